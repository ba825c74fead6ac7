"""``kit batch``: run notebooks headlessly from a YAML plan, record what produced each result, compare runs.

Modules: :mod:`~kit.batch.plan` (read, expand and validate a plan), :mod:`~kit.batch.runner` (execute the
runs through papermill, resume, interrupt), :mod:`~kit.batch.manifest` (what each run used),
:mod:`~kit.batch.resources` (GPUs and CPU threads per job), :mod:`~kit.batch.backends` (where runs execute: this
machine, a Ray cluster, Slurm), :mod:`~kit.batch.reference` (loss-trace bands),
:mod:`~kit.batch.report` (summary table and loss curves) and :mod:`~kit.batch.cli`.

Layout of a batch output folder::

    <out>/summary.csv, summary.md, loss_curves.png
    <out>/<NN>-<name>-<hash8>/manifest.json      what ran, on what, with which data, and how it ended
                              metrics.json       copied from the notebook's output_dir
                              <notebook>.ipynb   the executed notebook (kept when it failed)
                              parameters.yaml    the parameters papermill injected
                              papermill.log      the kernel's output, one line per step
                              output/            the injected output_dir
"""
