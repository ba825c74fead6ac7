"""Tests for kit.training.memory: the estimate pinned to well-known sizes and the guide's memory rules of thumb."""

from __future__ import annotations

import json
import math

import pytest

from kit.errors import KitError
from kit.training.memory import (
    GIB,
    MemoryEstimate,
    compare_to_measured,
    estimate_for_model,
    estimate_memory,
    fits,
    infer_shape,
    known_shape_for_name,
    lora_parameter_count,
    parse_param_count,
    print_estimate,
    shape_from_config,
)

QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7e9),
        ("0.5B", 5e8),
        ("1.5b", 1.5e9),
        ("125M", 1.25e8),
        ("7e9", 7e9),
        (8_030_261_248, 8_030_261_248),
    ],
)
def test_parse_param_count(text, expected) -> None:
    assert parse_param_count(text) == int(expected)


@pytest.mark.parametrize("bad", ["seven", "", "-7B", 0, True])
def test_parse_param_count_rejects_nonsense(bad) -> None:
    with pytest.raises(KitError):
        parse_param_count(bad)


def test_7b_weights_16bit_and_4bit() -> None:
    sixteen = estimate_memory("7B", "inference", 512, 1)
    assert sixteen.weights_gb == pytest.approx(14, rel=0.10)  # 14e9 bytes = 13.0 GiB
    four = estimate_memory("7B", "inference", 512, 1, quantization="4bit")
    assert 3.3 <= four.weights_gb <= 4.5
    qlora = estimate_memory("7B", "qlora", 512, 1)
    assert qlora.weights_gb == pytest.approx(four.weights_gb)
    eight = estimate_memory("7B", "inference", 512, 1, quantization="8bit")
    assert four.weights_gb < eight.weights_gb < sixteen.weights_gb
    fp32 = estimate_memory("7B", "inference", 512, 1, dtype="fp32")
    assert fp32.weights_gb == pytest.approx(2 * sixteen.weights_gb)


def test_double_quant_saves_about_three_eighths_bit_per_param() -> None:
    single = estimate_memory("7B", "qlora", 512, 1, double_quant=False)
    double = estimate_memory("7B", "qlora", 512, 1, double_quant=True)
    quantised = single.params - 2 * 32000 * single.assumptions["shape"]["hidden_size"]
    saving_bits = (single.weights_gb - double.weights_gb) * GIB * 8 / quantised
    assert saving_bits == pytest.approx(0.5 - 0.127, abs=0.005)


def test_method_ordering_for_7b() -> None:
    kwargs = {"seq_len": 2048, "batch": 2}
    full = estimate_memory("7B", "full", **kwargs)
    lora = estimate_memory("7B", "lora", **kwargs)
    qlora = estimate_memory("7B", "qlora", **kwargs)
    inference = estimate_memory("7B", "inference", **kwargs)
    assert full.total_gb > 3 * lora.total_gb
    assert lora.total_gb > qlora.total_gb
    assert inference.total_gb < lora.total_gb
    assert inference.trainable_params == 0 and inference.gradients_gb == 0 and inference.optimizer_gb == 0


def test_full_finetuning_bytes_per_param() -> None:
    # Mixed precision AdamW: 2 (bf16 weights) + 4 (fp32 grads) + 4 (master) + 8 (moments) = 18 bytes/param.
    full = estimate_memory(1_000_000_000, "full", 128, 1)
    static = full.weights_gb + full.gradients_gb + full.optimizer_gb
    assert static * GIB / full.params == pytest.approx(18)
    # Pure bf16 with 8-bit Adam (Unsloth full_finetuning): 2 + 2 + 2 = 6 bytes/param.
    lean = estimate_memory(1_000_000_000, "full", 128, 1, mixed_precision=False, optimizer="adamw_8bit")
    assert (lean.weights_gb + lean.gradients_gb + lean.optimizer_gb) * GIB / lean.params == pytest.approx(6)
    with pytest.raises(KitError, match="qlora"):
        estimate_memory("7B", "full", 128, 1, quantization="4bit")


def test_lora_parameter_count_matches_qwen_7b_r16() -> None:
    # Unsloth prints 40,370,176 trainable parameters for Qwen2.5-7B with r=16 on all seven projections.
    estimate = estimate_for_model(QWEN_7B, "lora", 2048, 2)
    assert estimate.trainable_params == 40_370_176
    assert estimate.params == pytest.approx(7.62e9, rel=0.01)
    shape = shape_from_config(known_shape_for_name(QWEN_7B)[1])
    assert lora_parameter_count(shape, r=32) == 2 * 40_370_176
    assert lora_parameter_count(shape, targets=["q_proj", "v_proj"]) < 40_370_176 / 5
    with pytest.raises(KitError, match="unknown LoRA target"):
        lora_parameter_count(shape, targets=["qkv"])


def test_trainable_overrides() -> None:
    assert estimate_memory("7B", "lora", 512, 1, trainable_params=1000).trainable_params == 1000
    assert estimate_memory("7B", "lora", 512, 1, lora_targets_share=0.01).trainable_params == 70_000_000
    small = estimate_memory("7B", "lora", 512, 1, lora_r=8).trainable_params
    assert estimate_memory("7B", "lora", 512, 1, lora_r=16).trainable_params == 2 * small


def test_gradient_checkpointing_reduces_activations() -> None:
    on = estimate_memory("7B", "lora", 2048, 2, gradient_checkpointing=True)
    off = estimate_memory("7B", "lora", 2048, 2, gradient_checkpointing=False)
    offloaded = estimate_memory("7B", "lora", 2048, 2, gradient_checkpointing="unsloth")
    assert off.activations_gb > 4 * on.activations_gb
    assert offloaded.activations_gb < on.activations_gb
    assert on.weights_gb == off.weights_gb


def test_activations_grow_with_seq_len_and_batch() -> None:
    for method in ("inference", "lora", "qlora", "full"):
        base = estimate_memory("1.5B", method, 1024, 1).activations_gb
        assert estimate_memory("1.5B", method, 2048, 1).activations_gb > base
        assert estimate_memory("1.5B", method, 1024, 2).activations_gb > base


def test_attention_scores_and_unfused_loss_cost_memory() -> None:
    flash = estimate_memory("7B", "lora", 4096, 1, gradient_checkpointing=False)
    eager = estimate_memory("7B", "lora", 4096, 1, gradient_checkpointing=False, flash_attention=False)
    assert eager.activations_gb > flash.activations_gb
    unfused = estimate_memory("7B", "lora", 4096, 1, fused_loss=False)
    assert unfused.activations_gb > estimate_memory("7B", "lora", 4096, 1).activations_gb


def test_korthikanti_formula_for_a_gpt_layer() -> None:
    # A GPT-style layer (4h GeLU MLP, no flash attention) must give s*b*h*(34 + 5*a*s/h) bytes.
    config = {"model_type": "gpt2", "n_embd": 1024, "n_layer": 1, "n_head": 16, "vocab_size": 50257}
    s, b, h, a = 512, 2, 1024, 16
    est = estimate_memory(
        None, "full", s, b, model_config=config, gradient_checkpointing=False, flash_attention=False
    )
    per_layer = est.assumptions["activation_details"]["per_layer_gb"] * GIB
    assert per_layer == pytest.approx(s * b * h * (34 + 5 * a * s / h))


@pytest.mark.parametrize("method", ["inference", "full", "lora", "qlora"])
def test_parts_sum_to_total_and_serialise(method) -> None:
    estimate = estimate_memory("3B", method, 1024, 4)
    assert isinstance(estimate, MemoryEstimate)
    assert math.isclose(sum(estimate.parts().values()), estimate.total_gb)
    data = estimate.to_dict()
    assert data["total_gb"] == pytest.approx(estimate.total_gb)
    json.dumps(data)  # JSON-friendly for metrics.json
    text = str(estimate)
    assert "total" in text and f"{estimate.total_gb:.2f}" in text and method in text


def test_guide_rules_of_thumb() -> None:
    qlora_7b = estimate_for_model(QWEN_7B, "qlora", 2048, 2)
    assert 6 <= qlora_7b.total_gb <= 14
    lora_7b = estimate_for_model(QWEN_7B, "lora", 2048, 2)
    assert 15 <= lora_7b.total_gb <= 26
    assert estimate_for_model("unsloth/Qwen2.5-0.5B-Instruct", "qlora", 2048, 2).total_gb < 4
    inference_7b = estimate_for_model(QWEN_7B, "inference", 2048, 1)
    assert 14 <= inference_7b.total_gb <= 18  # the guide quotes 16 GB
    full_7b = estimate_for_model(QWEN_7B, "full", 2048, 2)
    assert full_7b.total_gb >= 48
    # Llama-7B full fine-tuning in fp32 with AdamW: 16 bytes/param, the guide's ~112 GB.
    llama_fp32 = estimate_for_model("meta-llama/Llama-2-7b-hf", "full", 512, 1, dtype="fp32")
    assert 95 <= llama_fp32.total_gb <= 125
    assert fits(qlora_7b, 16) and not fits(lora_7b, 16) and fits(lora_7b, 24)


def test_estimate_for_model_reads_local_config_and_config_objects(tmp_path) -> None:
    from transformers import Qwen2Config

    from kit.builders.tiny import TinyModelSpec

    spec = TinyModelSpec()
    config = Qwen2Config(
        vocab_size=spec.vocab_size, hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads, tie_word_embeddings=True,
    )  # fmt: skip
    config.save_pretrained(tmp_path)
    from_dir = estimate_for_model(str(tmp_path), "lora", 128, 1, lora_r=4)
    from_file = estimate_for_model(tmp_path / "config.json", "lora", 128, 1, lora_r=4)
    from_object = estimate_for_model(config, "lora", 128, 1, lora_r=4)
    assert from_dir.total_gb == pytest.approx(from_object.total_gb) == pytest.approx(from_file.total_gb)
    assert "config.json" in from_dir.assumptions["source"]

    # The parameter count from the config matches a real model built from it.
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(0)
    real = sum(p.numel() for p in Qwen2ForCausalLM(config).parameters())
    attention_biases = spec.num_hidden_layers * (spec.hidden_size + 2 * spec.num_key_value_heads * 16)
    assert from_dir.params == real - attention_biases  # Qwen's q/k/v biases are the only thing not counted


def test_estimate_for_model_hub_ids_without_download() -> None:
    assert known_shape_for_name("unsloth/Qwen2.5-7B-Instruct-bnb-4bit")[0] == "Qwen2.5-7B"
    assert known_shape_for_name("meta-llama/Llama-3.2-1B-Instruct")[0] == "Llama-3.2-1B"
    assert known_shape_for_name("unsloth/Meta-Llama-3.1-8B")[0] == "Llama-3.1-8B"
    assert known_shape_for_name("mistralai/Mistral-7B-v0.3")[0] == "Mistral-7B"
    assert known_shape_for_name("someone/unknown-model") is None
    generic = estimate_for_model("someone/MyModel-13B-chat", "qlora", 1024, 1)
    assert generic.params == 13_000_000_000 and "read from the name" in generic.assumptions["source"]
    with pytest.raises(KitError, match="config"):
        estimate_for_model("someone/no-size-here", "lora", 1024, 1)


def test_infer_shape_recovers_llama_7b() -> None:
    shape = infer_shape(7_000_000_000)
    assert (shape.hidden_size, shape.num_layers, shape.intermediate_size) == (4096, 32, 11008)
    assert shape.parameter_count() == pytest.approx(6.74e9, rel=0.01)  # Llama-2-7B


def test_bad_inputs_raise_kit_errors() -> None:
    with pytest.raises(KitError, match="method"):
        estimate_memory("7B", "dpo-magic", 512, 1)
    with pytest.raises(KitError, match="seq_len"):
        estimate_memory("7B", "lora", 0, 1)
    with pytest.raises(KitError, match="optimizer"):
        estimate_memory("7B", "lora", 512, 1, optimizer="mystery")
    with pytest.raises(KitError, match="dtype"):
        estimate_memory("7B", "lora", 512, 1, dtype="int3")
    with pytest.raises(KitError):
        estimate_memory(None, "lora", 512, 1)


def test_print_estimate_and_compare_to_measured(capsys) -> None:
    estimate = estimate_for_model(QWEN_7B, "lora", 2048, 2)
    assert print_estimate(estimate, gpu_gb=16) is estimate
    out = capsys.readouterr().out
    assert "does NOT fit" in out and "QLoRA" in out and "Qwen2.5-7B" in out
    print_estimate(estimate, gpu_gb=80)
    assert "fits in 80.0 GB" in capsys.readouterr().out

    result = compare_to_measured(estimate, measured_peak_gb=estimate.total_gb / 1.25)
    assert result["ratio"] == pytest.approx(1.25, abs=1e-3)
    assert result["error_pct"] == pytest.approx(25.0, abs=0.1)
    assert "25% high" in capsys.readouterr().out
    with pytest.raises(KitError):
        compare_to_measured(estimate, measured_peak_gb=0)
