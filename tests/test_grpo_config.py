"""grpo_config sizes the generation batch for trl 1.15 on one process and under ``accelerate launch``."""

from __future__ import annotations

import pytest

from kit.training.config import generation_batch_size


@pytest.mark.parametrize(
    ("world", "per_device", "accumulation", "generations", "expected"),
    [(1, 4, 1, 4, 4), (1, 2, 4, 6, 12), (2, 4, 1, 4, 8), (2, 6, 1, 6, 12), (4, 2, 2, 6, 24)],
)
def test_generation_batch_is_a_multiple_of_the_global_batch_and_the_group(
    world: int, per_device: int, accumulation: int, generations: int, expected: int
) -> None:
    size = generation_batch_size(per_device, accumulation, generations, world_size=world)
    assert size == expected
    assert size % (per_device * world) == 0 and size % generations == 0


def test_world_size_comes_from_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert generation_batch_size(4, 1, 4) == 8  # the 2-process failure: 4 is not a multiple of the global 8
    monkeypatch.delenv("WORLD_SIZE")
    assert generation_batch_size(4, 1, 4) == 4


def test_config_uses_it() -> None:
    import kit.training.model  # noqa: F401  -- unsloth before trl
    from kit.training.config import grpo_config

    assert grpo_config("/tmp/kit-grpo-config", num_generations=6, per_device_train_batch_size=2,
                       gradient_accumulation_steps=4).generation_batch_size == 12


def test_grpo_variants_pass_through() -> None:
    """03's variant parameters reach trl's GRPOConfig unchanged (GSPO: sequence-level importance sampling)."""
    import kit.training.model  # noqa: F401  -- unsloth before trl
    from kit.training.config import grpo_config

    config = grpo_config("/tmp/kit-grpo-config", num_generations=4, max_completion_length=40,
                         per_device_train_batch_size=16, gradient_accumulation_steps=1, temperature=0.9,
                         loss_type="dr_grpo", importance_sampling_level="sequence", beta=0.02)
    assert (config.loss_type, config.importance_sampling_level, config.beta) == ("dr_grpo", "sequence", 0.02)
    assert config.temperature == 0.9 and config.max_completion_length == 40
    assert config.generation_batch_size == 16  # 4 prompts x 4 generations per step
