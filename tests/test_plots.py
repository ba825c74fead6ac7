"""Plots: Chinese renders without missing glyphs, before/after are told apart, figures save PNG and show inline."""

from __future__ import annotations

import sys
import warnings

import nbformat
import pytest
from nbclient import NotebookClient

from kit.evaluation.scoring import plot_comparison
from kit.plots import (
    AFTER_STYLE,
    BEFORE_STYLE,
    cjk_font_path,
    new_figure,
    plot_adapter_results,
    plot_loss,
    setup_fonts,
)

HISTORY = [{"step": i, "loss": 2.0 / i} for i in range(1, 6)]


def _render(figure) -> list[str]:
    """Draw the figure and return every warning message raised while drawing."""
    import io

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.savefig(io.BytesIO(), format="png")
    return [str(w.message) for w in caught]


def test_the_cjk_font_is_installed_with_the_kit() -> None:
    path = cjk_font_path()
    assert path is not None and path.is_file(), "mplfonts (a kit dependency) should ship Noto Sans CJK SC"
    assert setup_fonts() == "Noto Sans CJK SC"


def test_chinese_plots_render_every_glyph(tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = plot_loss(HISTORY, path=tmp_path / "loss.png", title="训练损失 (training loss)")
        bars = plot_comparison(
            {"label": "微调前", "n": 2, "rouge_l": 0.1, "bleu": 0.05, "exact_match": 0.0, "numeric_match": 0.0},
            {"label": "微调后", "n": 2, "rouge_l": 0.4, "bleu": 0.2, "exact_match": 0.5, "numeric_match": 0.5},
            path=tmp_path / "before_after.png",
        )
    messages = [str(w.message) for w in caught] + _render(loss) + _render(bars)
    missing = [m for m in messages if "missing from font" in m or "Glyph" in m]
    assert missing == []
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert (tmp_path / "before_after.png").stat().st_size > 1000


def test_the_glyph_check_catches_a_font_without_chinese() -> None:
    """Control: with DejaVu alone the same text warns, so the test above can fail."""
    import matplotlib

    figure = new_figure(3, 2)
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        figure.add_subplot().set_title("训练损失")
        messages = _render(figure)
    assert any("missing from font" in m for m in messages)


def test_before_and_after_differ_in_the_legend() -> None:
    figure = plot_comparison(
        {"label": "微调前", "n": 1, "rouge_l": 0.1, "bleu": 0.1},
        {"label": "微调后", "n": 1, "rouge_l": 0.2, "bleu": 0.2},
    )
    legend = figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["微调前", "微调后"]
    handles = legend.legend_handles
    assert handles[0].get_facecolor() != handles[1].get_facecolor()
    assert handles[0].get_hatch() != handles[1].get_hatch()  # apart in greyscale too
    assert BEFORE_STYLE["color"] != AFTER_STYLE["color"]


def test_adapter_results_one_panel_each(tmp_path) -> None:
    import pandas as pd

    rows = [{"adapter": a, "metric": m, "base": 0.1, "fine-tuned": 0.3} for a in ("alpaca", "medical")
            for m in ("rouge_l", "bleu")]
    figure = plot_adapter_results(pd.DataFrame(rows), path=tmp_path / "r.png")
    assert len(figure.axes) == 2 and (tmp_path / "r.png").is_file()


@pytest.mark.parametrize("headless", ["1", ""])
def test_plots_show_inline_in_an_executed_notebook(tmp_path, monkeypatch, headless) -> None:
    """Headless or not, a kernel run keeps exactly one PNG image per plot call in the cell's outputs."""
    monkeypatch.setenv("KIT_HEADLESS", headless)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import sys; sys.path.insert(0, {str(__import__('kit').__path__[0] + '/..')!r})\n"
            "from kit.plots import plot_loss\n"
            f"fig = plot_loss([{{'step': 1, 'loss': 1.0}}, {{'step': 2, 'loss': 0.5}}], path={str(tmp_path / 'a.png')!r},"
            " title='训练损失')"
        )
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    images = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 1, outputs
    assert not [o for o in outputs if o.get("name") == "stderr"], outputs
    assert (tmp_path / "a.png").is_file()
    assert sys.executable  # the kernel is this interpreter's python3 kernelspec


def test_dpo_margins_get_their_own_axis_with_a_zero_line(tmp_path) -> None:
    import pandas as pd

    rows = [{"adapter": "dpo", "metric": "reward_accuracy", "base": 0.42, "fine-tuned": 0.6},
            {"adapter": "dpo", "metric": "reward_margin", "base": -1.36, "fine-tuned": -0.5}]
    figure = plot_adapter_results(pd.DataFrame(rows), path=tmp_path / "r.png")
    rates, margins = figure.axes
    assert rates.get_ylim() == (0, 1.15) and margins.get_ylim()[0] < -1.36 < 0 < margins.get_ylim()[1]
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in rates.lines)  # chance line for accuracy
    assert any(list(line.get_ydata()) == [0, 0] for line in margins.lines)  # zero line for margins
    labels = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert "-1.36" in labels and "0.42" in labels and "0.60" in labels  # a value on every bar


def test_loss_plot_marks_epochs_and_smooths() -> None:
    from kit.plots import epoch_boundaries, smoothed

    history = [{"step": s, "loss": 3.0 - s / 10, "epoch": s / 4} for s in range(1, 11)]
    history.append({"step": 10, "train_runtime": 1.0, "epoch": 2.5})
    assert epoch_boundaries(history) == [(4, 1), (8, 2)]
    assert smoothed([1.0, 3.0, 5.0], window=2) == [1.0, 2.0, 4.0]
    figure = plot_loss(history)
    ax = figure.axes[0]
    assert len(ax.lines) == 2 + 2  # raw, smoothed and a dashed line per completed epoch
    assert [t.get_text() for t in ax.texts] == ["epoch 1 ends", "epoch 2 ends"]
    zh = plot_loss(history, lang="zh", ylabels={"loss": "损失"})
    assert zh.axes[0].get_ylabel() == "损失" and zh.axes[0].get_xlabel() == "步数"


def test_batch_loss_curves_one_panel_per_training_kind(tmp_path) -> None:
    from matplotlib.image import imread

    from kit.batch.report import plot_loss_curves, training_kind

    def run(name: str, notebook: str, losses: list[float]) -> dict:
        return {"run_id": name, "name": name, "status": "completed", "notebook": f"notebooks/{notebook}.ipynb",
                "loss_trace": [{"step": i + 1, "loss": v} for i, v in enumerate(losses)]}

    manifests = [run("01-alpaca", "01_alpaca_sft", [2.0, 1.0]), run("02-医疗", "02_medical_sft", [3.0, 2.5]),
                 run("03-grpo", "03_grpo_reasoning", [0.0, 0.01]), run("04-dpo", "04_dpo_preference", [0.69, 0.6]),
                 {"run_id": "05", "status": "completed", "notebook": "05_evaluate_and_export.ipynb"}]
    assert [training_kind(m) for m in manifests] == ["SFT", "SFT", "GRPO", "DPO", "other"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = plot_loss_curves(tmp_path / "loss_curves.png", manifests)
    assert not [w for w in caught if "missing from font" in str(w.message)]  # 医疗 renders
    assert imread(path).shape[1] > imread(path).shape[0] * 2  # three panels side by side
