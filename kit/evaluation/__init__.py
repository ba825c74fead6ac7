"""Evaluation: held-out scores before and after training, and how a reader sees them.

Offers :mod:`~kit.evaluation.scoring` (generate answers and score them: ROUGE-L, BLEU, exact and numeric
match), :mod:`~kit.evaluation.block` (the before/after ``"eval"`` block of ``metrics.json``, paired bootstrap,
verdicts), :mod:`~kit.evaluation.preference` (DPO on held-out pairs), :mod:`~kit.evaluation.grpo_report`
(reward curves and the reward-hacking audit), :mod:`~kit.evaluation.display` (items a reader can judge),
:mod:`~kit.evaluation.adapters` (where notebook 05 finds adapters) and :mod:`~kit.evaluation.methods_compare`
(notebook 06: every method trained and scored alike).
"""
