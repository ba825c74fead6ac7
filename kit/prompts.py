"""Prompt templates and formatting (owned by the data layer; this stub holds the shared system prompts).

The reasoning system prompts live here so that ``kit.data`` (building GRPO prompts) and
``kit.rewards`` (judging the matching answer format) share one definition.
"""

from __future__ import annotations

# The default XML format: reasoning, then the answer, each in its own tag.
REASONING_SYSTEM_PROMPT_XML = (
    "Respond in the following format:\n"
    "<reasoning>\n...\n</reasoning>\n"
    "<answer>\n...\n</answer>"
)
# The Chinese format from our users' tutorials: step-by-step work in <reasoning>, then a line 最终答案：N.
REASONING_SYSTEM_PROMPT_ZH = (
    "请一步一步地思考，并把推理过程写在 <reasoning> 和 </reasoning> 之间。\n"
    "推理结束后，另起一行写出“最终答案：N”，其中 N 只包含数字。"
)
# The GSM8K format: worked solution, final line "#### N".
REASONING_SYSTEM_PROMPT_HASH = (
    "Solve the problem step by step. On the last line write the final answer as '#### N', "
    "where N is a number only."
)
REASONING_SYSTEM_PROMPT = REASONING_SYSTEM_PROMPT_ZH
