"""GRPO reward functions that are correct on real model output, and a preflight check to run before training.

Usage::

    from kit.rewards import make_rewards, preflight
    rewards = make_rewards("zh")  # the same as the module-level functions (default "zh" format)
    preflight(rewards, prompts, sample_completions, answer=answers, num_generations=6)
    GRPOTrainer(..., reward_funcs=rewards)
"""

from __future__ import annotations

from kit.rewards.formats import FORMAT_NAMES, AnswerFormat, answer_format
from kit.rewards.numbers import parse_number, reference_value
from kit.rewards.preflight import PreflightReport, RewardStats, RewardWarning, preflight, stop_if_no_signal
from kit.rewards.scoring import (
    CORRECT_WEIGHT,
    DEFAULT_FORMAT,
    DEFAULT_REWARDS,
    FALLBACK_CREDIT,
    FORMAT_WEIGHT,
    RewardScorer,
    completion_text,
    correctness_reward,
    int_reward,
    make_rewards,
    soft_format_reward,
    strict_format_reward,
    xml_count_reward,
)

__all__ = [
    "CORRECT_WEIGHT",
    "DEFAULT_FORMAT",
    "DEFAULT_REWARDS",
    "FALLBACK_CREDIT",
    "FORMAT_NAMES",
    "FORMAT_WEIGHT",
    "AnswerFormat",
    "PreflightReport",
    "RewardScorer",
    "RewardStats",
    "RewardWarning",
    "answer_format",
    "completion_text",
    "correctness_reward",
    "int_reward",
    "make_rewards",
    "parse_number",
    "preflight",
    "reference_value",
    "soft_format_reward",
    "stop_if_no_signal",
    "strict_format_reward",
    "xml_count_reward",
]
