"""The kit's figures: shown inline in Jupyter (papermill's headless kernels too), saved as PNG, Chinese included.

Figures are bare ``matplotlib.figure.Figure`` objects on the Agg canvas (no pyplot, no backend switch), so
the same call works in Jupyter, under papermill and in a plain script. :func:`show` saves the PNG and, inside
an IPython kernel, displays that PNG once as an image output, which is what an executed notebook keeps.
CJK text renders through Noto Sans CJK SC, shipped by the ``mplfonts`` package (a kit dependency, so Colab
gets it from pip too; the font file is read locally, nothing is downloaded at run time); a system install
of Debian's ``fonts-noto-cjk`` is used when the package is missing.
"""

from __future__ import annotations

import io
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

CJK_FAMILY = "Noto Sans CJK SC"
_MPLFONTS_FILE = "NotoSansCJKsc-Regular.otf"
_SYSTEM_FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto", "/usr/share/fonts")


def cjk_font_path() -> Path | None:
    """The Noto Sans CJK SC file: from the ``mplfonts`` package, else a system ``fonts-noto-cjk``; None if neither."""
    import importlib.util

    spec = importlib.util.find_spec("mplfonts")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "fonts" / _MPLFONTS_FILE
        if candidate.is_file():
            return candidate
    for folder in _SYSTEM_FONT_DIRS:
        if os.path.isdir(folder):
            for found in sorted(Path(folder).rglob("NotoSansCJK*-Regular.tt[cf]")):
                return found
    return None


@lru_cache(maxsize=1)
def setup_fonts() -> str | None:
    """Register the CJK font with matplotlib once and put it behind DejaVu Sans as the glyph fallback.

    Latin text keeps DejaVu Sans; every glyph DejaVu lacks (Chinese, Japanese, Korean) comes from Noto CJK.
    Returns the CJK family name, or None (with one printed line) when no CJK font is installed.
    """
    import matplotlib
    from matplotlib import font_manager

    path = cjk_font_path()
    if path is None:
        print("[plots] no CJK font found: Chinese text will show as boxes. Install it with: pip install mplfonts")
        return None
    font_manager.fontManager.addfont(str(path))
    family = font_manager.FontProperties(fname=str(path)).get_name()
    # Per-glyph fallback runs across the entries of font.family (not inside the generic "sans-serif" list).
    latin = next((f for f in matplotlib.rcParams["font.sans-serif"] if f != family), "DejaVu Sans")
    matplotlib.rcParams["font.family"] = [latin, family]
    return family


def new_figure(width: float, height: float) -> Any:
    """A bare Agg figure with the CJK font set up (use :func:`show` to save and display it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    setup_fonts()
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def in_kernel() -> bool:
    """True inside an IPython kernel (Jupyter, Colab, papermill), where a display becomes a cell output."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(figure: Any, path: str | os.PathLike[str] | None = None, dpi: int = 110) -> Any:
    """Save ``figure`` as PNG to ``path`` (folders made) and display it inline once when in a kernel.

    The PNG bytes are displayed as an image (not the figure object), so no matplotlib backend is involved and
    headless kernels keep the picture in the executed notebook. Returns the figure; assign it
    (``fig = plot_loss(...)``) rather than leaving it as a cell's last expression, which would show it twice.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if in_kernel():
        from IPython.display import Image, display

        display(Image(data=data, format="png"))
    return figure


def smoothed(values: list[float], window: int | None = None) -> list[float]:
    """Trailing mean over ``window`` points (about a tenth of the run, at least 2), so one batch is not the story."""
    window = window or max(2, len(values) // 10)
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def epoch_boundaries(log_history: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """``[(step, epoch), ...]``: the logged step at which each whole epoch was completed (the data repeats after)."""
    import math

    marks, done = [], 0
    for entry in log_history:
        if "epoch" in entry and "step" in entry and "train_runtime" not in entry:
            whole = math.floor(float(entry["epoch"]) + 1e-6)
            if whole > done:
                marks.append((int(entry["step"]), whole))
                done = whole
    return marks


_LOSS_WORDS = {"en": {"step": "step", "smooth": "smoothed", "raw": "per step", "epoch": "epoch {} ends"},
               "zh": {"step": "步数", "smooth": "平滑", "raw": "每步", "epoch": "第 {} 个 epoch 结束"}}


def plot_loss(
    log_history: list[dict[str, Any]],
    path: str | os.PathLike[str] | None = None,
    keys: tuple[str, ...] = ("loss",),
    title: str = "Training loss",
    lang: str = "en",
    ylabels: dict[str, str] | None = None,
) -> Any:
    """Plot ``keys`` per step from ``trainer.state.log_history``, one panel each: the raw values faint, a smoothed
    line bold, and a dashed line where each epoch ends (the data repeats after it); saved to ``path``, shown inline."""
    words = _LOSS_WORDS.get(lang, _LOSS_WORDS["en"])
    figure = new_figure(5 * len(keys), 3.5)
    axes = figure.subplots(1, len(keys), squeeze=False)[0]
    boundaries = epoch_boundaries(log_history)
    for ax, key in zip(axes, keys):
        points = [(e["step"], e[key]) for e in log_history if key in e and "step" in e]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", markersize=2, linewidth=0.8, alpha=0.35, label=words["raw"])
            if len(values) >= 6:
                ax.plot(steps, smoothed(list(values)), linewidth=2, label=words["smooth"])
            last = steps[-1]
            for step, epoch in boundaries:
                if step < last:
                    ax.axvline(step, color="#777777", linestyle="--", linewidth=0.8)
                    ax.annotate(words["epoch"].format(epoch), (step, 1), xycoords=("data", "axes fraction"),
                                fontsize=7, rotation=90, ha="right", va="top", color="#555555")
            ax.legend(fontsize=7, frameon=False, loc="best")
        ax.set_xlabel(words["step"])
        ax.set_ylabel((ylabels or {}).get(key, key))
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    return show(figure, path)


# Before is a light grey, after a saturated blue with hatching: apart in colour, in greyscale and in print.
BEFORE_STYLE: dict[str, Any] = {"color": "#b8c0c8", "edgecolor": "#5f6b76"}
AFTER_STYLE: dict[str, Any] = {"color": "#2f6fbf", "edgecolor": "#1b3f6e", "hatch": "//"}


def plot_before_after(
    metrics: list[str],
    before: list[float],
    after: list[float],
    *,
    labels: tuple[str, str] = ("before", "after"),
    title: str = "",
    path: str | os.PathLike[str] | None = None,
    ylabel: str = "mean score",
) -> Any:
    """Grouped bars of ``before`` vs ``after`` per metric, values printed on the bars; saved and shown."""
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} (before)", f"{labels[1]} (after)")
    figure = new_figure(1.6 * len(metrics) + 2.5, 3.6)
    axes = figure.add_subplot()
    width = 0.38
    positions = range(len(metrics))
    for offset, label, values, style in (
        (-width / 2, labels[0], before, BEFORE_STYLE),
        (width / 2, labels[1], after, AFTER_STYLE),
    ):
        # A metric with no scorable item (every answer too short for distinct_2, say) has no mean: no bar, "n/a".
        missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
        heights = [0.0 if gone else float(v) for v, gone in zip(values, missing)]
        bars = axes.bar([p + offset for p in positions], heights, width, label=label, **style)
        axes.bar_label(bars, labels=["n/a" if gone else f"{v:.2f}" for v, gone in zip(heights, missing)],
                       fontsize=8, padding=2)
    axes.set_xticks(list(positions), [m.replace("_", " ") for m in metrics])
    axes.set_ylim(0, 1.15)
    axes.set_ylabel(ylabel)
    axes.set_title(title or f"{labels[0]} vs {labels[1]}")
    axes.legend(loc="upper left", fontsize=8, frameon=False)
    return show(figure, path)


def _is_rate(metric: str) -> bool:
    """Metrics on a 0..1 scale (shares and scores); margins and other unbounded values get their own axis."""
    return "margin" not in metric


def plot_adapter_results(results: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """One before/after panel per adapter from a frame with columns adapter, metric, base, fine-tuned (05).

    Rates and scores share a 0..1 axis (a dotted 0.5 chance line where the metric is an accuracy); margins get
    a panel of their own with a zero line, so a negative base margin stays visible. Every bar carries its value.
    """
    panels = []
    for name in dict.fromkeys(results["adapter"]):
        part = results[results["adapter"] == name]
        rates = part[[_is_rate(str(m)) for m in part["metric"]]]
        others = part[[not _is_rate(str(m)) for m in part["metric"]]]
        panels += [(str(name), rates, True)] if len(rates) else []
        panels += [(f"{name}: {m}", others[others["metric"] == m], False) for m in others["metric"]]
    figure = new_figure(max(3.2, 1.6 * max(len(p[1]) for p in panels) + 1.6) * len(panels) if panels else 4, 3.6)
    axes = figure.subplots(1, max(1, len(panels)), squeeze=False)[0]
    width = 0.38
    for ax, (title, part, rate) in zip(axes, panels):
        positions = range(len(part))
        for offset, column, label, style in ((-width / 2, "base", "base", BEFORE_STYLE),
                                             (width / 2, "fine-tuned", "fine-tuned", AFTER_STYLE)):
            values = [float(v) for v in part[column]]
            bars = ax.bar([p + offset for p in positions], values, width, label=label, **style)
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8, padding=2)
        ax.set_xticks(list(positions), [str(m).replace("_", " ") for m in part["metric"]])
        if rate:
            ax.set_ylim(0, 1.15)
            if any("accuracy" in str(m) for m in part["metric"]):
                ax.axhline(0.5, color="#888888", linestyle=":", linewidth=1, label="chance (0.5)")
        else:
            ax.axhline(0, color="#333333", linewidth=0.8)
            low = min(0.0, *[float(v) for v in part["base"]], *[float(v) for v in part["fine-tuned"]])
            high = max(0.0, *[float(v) for v in part["base"]], *[float(v) for v in part["fine-tuned"]])
            pad = 0.15 * (high - low or 1.0)
            ax.set_ylim(low - pad, high + pad)
        ax.set_title(title)
        ax.legend(loc="best", fontsize=7, frameon=False)
    return show(figure, path)
