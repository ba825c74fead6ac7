"""data/arith: the generated GRPO word problems are reproducible, correct, bilingual and loadable by 03."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_arith", DATA / "generate_arith.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    gen = _generator()
    counts = gen.write(tmp_path, per_level=300)
    assert counts == {"level1.jsonl": 300, "level2.jsonl": 300, "level3.jsonl": 300, "level4.jsonl": 300,
                      "train.jsonl": 900}
    for name in counts:
        assert (tmp_path / name).read_bytes() == (DATA / "arith" / name).read_bytes(), name
        assert gen.check(DATA / "arith" / name) == []


def test_check_catches_a_wrong_step(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "3 + 4 = 8\\n#### 8"}\n', encoding="utf-8")
    assert _generator().check(bad) == [f"{bad}:1: wrong step '3 + 4 = 8'"]


def test_train_mix_loads_with_both_languages_and_64_held_out() -> None:
    from kit.data import load_gsm8k, train_holdout_split
    from kit.formatting.prompts import REASONING_SYSTEM_PROMPT_ZH

    dataset, _report = load_gsm8k(DATA / "arith" / "train.jsonl", system_prompt=REASONING_SYSTEM_PROMPT_ZH)
    assert len(dataset) == 900
    _, holdout = train_holdout_split(dataset, holdout=0.2, seed=3407)
    assert len(holdout) >= 64
    questions = dataset["question"]
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in q) for q in questions) == 450
    assert set(dataset["answer"]) <= {str(n) for n in range(0, 82)}
