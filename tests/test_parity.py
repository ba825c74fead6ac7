"""The parity gate (kit.export.parity): template check, bounds, metrics; end to end on SmolLM2 where llama.cpp is built."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import kit.training.model  # noqa: F401  -- unsloth before peft/trl, as in the notebooks
from kit.errors import KitError
from kit.export.ollama_template import parse_modelfile, render
from kit.export.parity import compare, gate, template_check
from kit.export.save import modelfile_text

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CONVERSATIONS = [
    [{"role": "user", "content": "Explain what a leap year is."}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "  spaces\n\nand lines  "}],
]


@pytest.fixture
def tokenizer(tiny_model_dir: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def _prompts(tok: object) -> list[str]:
    return [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CONVERSATIONS]


@pytest.mark.parametrize("default_system", [False, True])
def test_written_modelfile_fills_in_like_the_chat_template(tokenizer: object, default_system: bool) -> None:
    if default_system:
        tokenizer.chat_template = SMOLLM2_TEMPLATE
    text = modelfile_text(tokenizer, "model-f16.gguf")
    assert ('SYSTEM """You are a helpful AI assistant named SmolLM' in text) is default_system
    report = template_check(tokenizer, _prompts(tokenizer), text)
    assert report == {"ok": True, "checked": 3, "problems": []}


def test_a_modelfile_without_the_default_system_is_caught(tokenizer: object) -> None:
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    text = "\n".join(line for line in modelfile_text(tokenizer, "m.gguf").splitlines() if not line.startswith("SYSTEM"))
    report = template_check(tokenizer, _prompts(tokenizer), text)
    assert not report["ok"]
    assert report["problems"] == [report["problems"][0]] and "differs from apply_chat_template" in report["problems"][0]
    assert "(2 of 3 conversations differ)" in report["problems"][0]  # the one with its own system message is fine


def test_swapped_roles_are_caught(tokenizer: object) -> None:
    good = modelfile_text(tokenizer, "m.gguf")
    swapped = good.replace("<|im_start|>{{ .Role }}",
                           '<|im_start|>{{ if eq .Role "user" }}assistant{{ else }}{{ if eq .Role "assistant" }}user'
                           "{{ else }}{{ .Role }}{{ end }}{{ end }}")
    assert swapped != good
    report = template_check(tokenizer, _prompts(tokenizer), swapped)
    assert not report["ok"] and "differs from apply_chat_template at character" in report["problems"][0]
    assert "'<|im_start|>assistant\\nExplain" in report["problems"][0]


def test_an_eos_that_differs_from_the_modelfile_stop_is_caught(tokenizer: object) -> None:
    text = modelfile_text(tokenizer, "m.gguf")
    other = copy.deepcopy(tokenizer)
    other.add_special_tokens({"eos_token": "<|kit_other_eos|>"})
    report = template_check(other, _prompts(tokenizer), text)
    assert not report["ok"]
    assert report["problems"][0].startswith("the Modelfile's stops") and "'<|kit_other_eos|>'" in report["problems"][0]


def test_alpaca_text_template_is_checked_too(tokenizer: object) -> None:
    from kit.formatting.prompts import render_prompt

    text = modelfile_text(tokenizer, "m.gguf", template="alpaca_en")
    prompts = [render_prompt({"instruction": q}, "alpaca_en") for q in ("Say hi", "Add 2+2\nand explain")]
    assert template_check(tokenizer, prompts, text)["ok"]
    assert not template_check(tokenizer, ["### Something else\nSay hi"], text)["ok"]


def test_go_template_subset_and_its_limits() -> None:
    template = '{{- if .System }}S:{{ .System }}\n{{ end -}}\n  {{ range .Messages }}{{ if ne .Role "system" }}[{{ .Role }}]{{ .Content }}{{ end }}{{ end }}'
    assert render(template, [{"role": "user", "content": "a"}], "sys") == "S:sys\n[user]a"
    assert render(template, [{"role": "user", "content": "a"}]) == "[user]a"
    with pytest.raises(KitError, match="beyond what the kit can check"):
        render("{{ .Content | upper }}", [])
    with pytest.raises(KitError, match=r"no \{\{ end \}\}"):
        render("{{ if .System }}x", [])
    parsed = parse_modelfile('FROM ./m.gguf\nTEMPLATE """a\n{{ .Prompt }}"""\nSYSTEM "be brief"\nPARAMETER stop "<|im_end|>"\n')
    assert parsed == {"template": "a\n{{ .Prompt }}", "system": "be brief", "stops": ["<|im_end|>"]}


def test_gate_holds_each_format_to_its_bound() -> None:
    def row(delta: float, lo: float, hi: float) -> dict:
        return {"rouge_l": {"value": 0.4, "delta": delta, "ci95": [lo, hi]}}

    assert gate({"merged_16bit": row(0.0, 0.0, 0.0), "f16": row(-0.01, -0.03, 0.01), "q8_0": row(-0.029, -0.05, -0.01),
                 "q4_k_m": row(-0.3, -0.4, -0.2)}) == []
    problems = gate({"merged_16bit": row(-0.021, -0.05, 0.01), "f16": row(-0.01, -0.02, -0.001),
                     "q8_0": row(0.031, 0.0, 0.06)})
    assert len(problems) == 3
    assert problems[0].startswith("merged_16bit: ROUGE-L -0.0210") and "±0.02" in problems[0]
    assert problems[1].startswith("f16: the 95% interval") and "excludes 0" in problems[1]
    assert problems[2].startswith("q8_0: ROUGE-L +0.0310")


def test_compare_scores_an_export_against_the_reference() -> None:
    logp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    other = np.log(np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]]))[:2]
    reference = {"texts": ["the cat sat", "a dog"], "logprobs": logp}
    row = compare(reference, {"texts": ["the cat sat", "a big dog"], "logprobs": other, "seconds": 1.5},
                  ["the cat sat down", "a dog"])
    assert row["identical"] == 0.5 and row["first_token_agreement"] == 0.5 and row["seconds"] == 1.5
    assert row["rouge_l"]["delta"] < 0 and row["rouge_l"]["ci95"][0] <= row["rouge_l"]["delta"]
    assert row["kl"] > 0
    same = compare(reference, reference, ["the cat sat down", "a dog"])
    assert same["identical"] == 1.0 and same["kl"] == 0.0 and same["rouge_l"]["delta"] == 0.0


def _llama_cpp_build() -> object:
    from kit.builders.llama_cpp import find_build

    build = find_build()
    if build is None:
        pytest.skip("llama.cpp is not built on this machine (kit llama-cpp builds it once, ~4-15 min on 2 cores); "
                    "the GGUF part of the parity gate needs it")
    return build


def test_parity_gate_end_to_end_on_smollm2(smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small LoRA adapter on the real SmolLM2: merged, f16, q8_0 and q4_k_m scored against it, parity.json written."""
    _llama_cpp_build()
    import sys

    import torch
    import unsloth_zoo.llama_cpp as zoo

    # The export points Unsloth at the build (variables and module defaults): undone after the test.
    for name in ("UNSLOTH_LLAMA_CPP_PATH", "UNSLOTH_LLAMA_CPP_OFFLINE", "UNSLOTH_LLAMA_CPP_SCRIPTS_DIR"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(zoo.check_llama_cpp, "__defaults__", zoo.check_llama_cpp.__defaults__)
    monkeypatch.setattr(zoo, "LLAMA_CPP_DEFAULT_DIR", zoo.LLAMA_CPP_DEFAULT_DIR)
    if "unsloth.save" in sys.modules and hasattr(sys.modules["unsloth.save"], "LLAMA_CPP_DEFAULT_DIR"):
        monkeypatch.setattr(sys.modules["unsloth.save"], "LLAMA_CPP_DEFAULT_DIR",
                            sys.modules["unsloth.save"].LLAMA_CPP_DEFAULT_DIR)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kit.export.parity import PARITY_FILE, run_parity, table

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    base = AutoModelForCausalLM.from_pretrained(str(smollm2_dir), dtype=torch.float32)
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.002)  # not a no-op adapter
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    tok.save_pretrained(adapter)
    with open(adapter / "eval_set.jsonl", "w", encoding="utf-8") as handle:
        for question, answer in [("What is the capital of France?", "Paris is the capital of France."),
                                 ("Name a primary colour.", "Red is a primary colour."),
                                 ("What is 2 plus 2?", "2 plus 2 is 4.")]:
            prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                             add_generation_prompt=True)
            handle.write(json.dumps({"prompt": prompt, "reference": answer}) + "\n")
    report = run_parity(adapter, tmp_path / "parity", n=3, max_new_tokens=8, dtype="float32", max_seq_length=256)
    saved = json.loads((tmp_path / "parity" / PARITY_FILE).read_text(encoding="utf-8"))
    assert saved["reference"] == "adapter" and saved["n"] == 3
    assert list(saved["formats"]) == ["merged_16bit", "f16", "q8_0", "q4_k_m"]
    for name, row in saved["formats"].items():
        assert set(row["rouge_l"]) == {"value", "delta", "ci95"}, name
        assert 0 <= row["identical"] <= 1 and row["kl"] is not None and row["first_token_agreement"] is not None
    assert saved["formats"]["f16"]["prompt_tokens_match"] == 1.0  # llama.cpp tokenizes as the model does
    assert saved["formats"]["f16"]["first_token_agreement"] == 1.0 and saved["formats"]["f16"]["kl"] < 0.05
    assert saved["template"] == {"ok": True, "checked": 3}
    assert report["passed"], report["problems"]
    assert "q4_k_m" in table(report) and (tmp_path / "parity" / "gguf" / "q8_0" / "Modelfile").is_file()
