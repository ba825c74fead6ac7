"""kit.notebooks.outputs: the limits executed notebooks are held to (cell lines, printed dicts, cut answers)."""

from __future__ import annotations

import json
from pathlib import Path

from kit.cli import main as kit_main
from kit.notebooks.outputs import LIMITS, output_stats, problems


def _notebook(path: Path, outputs: list[list[dict]]) -> Path:
    cells = [{"cell_type": "code", "metadata": {}, "source": [], "execution_count": 1, "outputs": o} for o in outputs]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    return path


def _out(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def test_counts_dicts_cut_answers_and_lines_per_cell(tmp_path: Path, capsys) -> None:
    noisy = _notebook(tmp_path / "noisy.ipynb", [
        [_out("{'loss': '5.822', 'grad_norm': '0.3782', 'epoch': '0.02083'}\n" * 3)],
        [{"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": (
            "   prompt                                             prediction\n"
            "0  <|im_start|>user\\nExplain what a leap year is....  The the the the the...\n")}}],
        [_out("x\n" * 90)],
        [_out("warning\n", "stderr")],
    ])
    stats = output_stats(noisy)
    assert stats.dict_lines == 3 and stats.cut_answers == 1 and stats.max_cell_lines == 90 and stats.stderr_lines == 1
    found = problems(stats, stderr_limit=0)
    assert len(found) == 4 and any("dict_lines 3 > 0" in f for f in found) and any("cell 2" in f for f in found)
    assert kit_main(["notebooks", "stats", str(noisy), "--check"]) == 1
    assert "over the limit" in capsys.readouterr().out


def test_display_lines_and_ordinary_text_pass(tmp_path: Path) -> None:
    quiet = _notebook(tmp_path / "quiet.ipynb", [
        [_out("  step  epoch     loss\n     6 0.1250   6.0305\n")],
        [_out("after     │ The answer is 3...\nreference │ Wait...\n")],  # kit.evaluation.display never cuts: a model's own '...'
        [_out("before: {'rouge_l': 0.1}\n[generate] 8/8 prompts, batch 1/1, 2.5s\n")],
    ])
    stats = output_stats(quiet)
    assert stats.dict_lines == 0 and stats.cut_answers == 0 and problems(stats) == []
    assert LIMITS["dict_lines"] == 0 and LIMITS["cut_answers"] == 0
