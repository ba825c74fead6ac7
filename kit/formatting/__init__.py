"""Formatting: records into the text and tokens a trainer sees, and the check that catches a wrong EOS first.

Offers :mod:`~kit.formatting.prompts` (Alpaca, medical and reasoning templates, batched formatters that append
EOS, the reasoning system prompts that data and rewards share), :mod:`~kit.formatting.chat_format` (records
through the tokenizer's own chat template with an assistant-only mask; DPO pairs; EOS checks) and
:mod:`~kit.formatting.checks` (:func:`~kit.formatting.checks.check_formatting`, run before training).
"""
