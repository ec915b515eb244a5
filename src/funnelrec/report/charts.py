"""The report's plots as PNG bytes (matplotlib's object API: no pyplot state, no display)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from funnelrec.eval.funnel import FunnelReport
from funnelrec.report.build import RunReport
from funnelrec.report.summary import DataSummary
from funnelrec.train.loop import TrainingRun

COLORS = ("#3b6fb6", "#d9822b", "#3f9e5a", "#c0392b", "#8e5ea2", "#7f7f7f")


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return buf.getvalue()


def popularity_chart(data: DataSummary) -> bytes:
    """Interactions per item against popularity rank (log-log), and per-user counts."""
    fig = Figure(figsize=(9, 3.2))
    ax, ax2 = fig.subplots(1, 2)
    pop = data.popularity[data.popularity > 0]
    ax.loglog(np.arange(1, len(pop) + 1), pop, color=COLORS[0])
    ax.set(xlabel="item popularity rank", ylabel="interactions", title="popularity curve")
    ax.grid(True, which="major", alpha=0.3)
    ax2.hist(data.per_user, bins=40, color=COLORS[1])
    ax2.set(xlabel="interactions per user", ylabel="users", title="user activity")
    ax2.set_yscale("log")
    return png(fig)


def stage_order(runs: Sequence[RunReport]) -> list[str]:
    """Union of the runs' funnel stages: recall channels first, then the stages in order."""
    return _stage_order([run.funnel for run in runs])


def _stage_order(reports: Sequence[FunnelReport]) -> list[str]:
    order: list[str] = []
    for report in reports:
        order += [s.stage for s in report.stages if s.stage not in order]
    return sorted(order, key=lambda s: (not s.startswith("recall:"), order.index(s)))


def funnel_chart(runs: Sequence[RunReport]) -> bytes:
    """Share of test items kept after each recall channel and each stage (one bar per run)."""
    return png(funnel_figure({run.name: run.funnel for run in runs}))


def funnel_figure(reports: Mapping[str, FunnelReport]) -> Figure:
    """The funnel chart of one or more ``evaluate_funnel`` reports (by name), as a figure:
    share of test items kept after each recall channel and each stage, one bar per report.
    In a notebook: ``IPython.display.Image(png(funnel_figure({"mine": report})))``."""
    stages = _stage_order(list(reports.values()))
    n = max(len(reports), 1)
    fig = Figure(figsize=(9, 0.45 * len(stages) * n**0.5 + 1.5))
    ax = fig.subplots()
    height = 0.8 / n
    y = np.arange(len(stages), dtype=np.float64)
    for i, (name, report) in enumerate(reports.items()):
        kept = {s.stage: s.test_recall for s in report.stages}
        values = np.asarray([kept.get(s, np.nan) for s in stages])
        pos = y + (i - (n - 1) / 2) * height
        bars = ax.barh(pos, values, height=height, color=COLORS[i % len(COLORS)], label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_yticks(y, stages)
    ax.invert_yaxis()
    ax.set(xlabel="share of test items kept", title="funnel: test items surviving each stage")
    top = max((s.test_recall for r in reports.values() for s in r.stages), default=0.0)
    ax.set_xlim(0, min(1.0, top * 1.2 + 0.02))
    if n > 1:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def tradeoff_chart(runs: Sequence[RunReport]) -> bytes:
    """Accuracy (recall@k) against diversity@k and coverage@k, one point per stage."""
    return png(tradeoff_figure(runs))


def tradeoff_figure(runs: Sequence[RunReport]) -> Figure:
    """``tradeoff_chart``'s figure; stage labels are placed so that none overprints another
    (``place_labels``), however close the points."""
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)  # a renderer to measure the labels with
    axes = fig.subplots(1, 2)
    for ax, other in zip(axes, ("diversity", "coverage"), strict=True):
        labels: list[tuple[str, float, float]] = []
        for i, run in enumerate(runs):
            labels += _scatter(ax, run, other, COLORS[i % len(COLORS)], marker="os^Dv"[i % 5])
        k = runs[0].k
        ax.set(xlabel=f"{other}@{k}", ylabel=f"recall@{k}", title=f"accuracy vs {other}")
        ax.grid(True, alpha=0.3)
        place_labels(ax, labels)
    if len(runs) > 1:
        axes[0].legend(fontsize=8)
    return fig


def _scatter(
    ax: Axes, run: RunReport, other: str, color: str, marker: str
) -> list[tuple[str, float, float]]:
    """Scatter one run's stages; returns their ``(label, x, y)``."""
    k = run.k
    pts = [
        (s.stage, s.metrics[f"{other}@{k}"], s.metrics[f"recall@{k}"])
        for s in run.stages
        if f"{other}@{k}" in s.metrics and f"recall@{k}" in s.metrics
    ]
    if pts:
        xs, ys = [p[1] for p in pts], [p[2] for p in pts]
        ax.scatter(xs, ys, color=color, marker=marker, label=run.name)
    return pts


def place_labels(
    ax: Axes, points: Sequence[tuple[str, float, float]], fontsize: float = 7
) -> list[Annotation]:
    """Annotate ``(label, x, y)`` points so that no two labels overlap.

    Greedy, in the given order: each label takes the first free slot of a fixed sequence of
    offsets (right of the point, left of it, then one text line further up or down at a
    time, with a thin leader line), free meaning its box (as the renderer draws it) meets no
    box placed before and lies inside the axes (a second pass drops the last condition).
    Needs the axes' final limits: call it after every plot command.
    """
    ax.autoscale_view()
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    out: list[Annotation] = []
    tries = [(dx, dy, inside) for inside in (True, False) for dx, dy in _offsets(fontsize)]
    for name, x, y in points:
        for i, (dx, dy, inside) in enumerate(tries):
            ann = ax.annotate(
                name, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                ha="left" if dx > 0 else "right", va="center",
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"} if dy else None,
            )  # fmt: skip
            ann.update_positions(renderer)  # where it will be drawn
            box = Text.get_window_extent(ann, renderer).padded(1.0)  # the text, no leader
            free = not any(box.overlaps(b) for b in placed)
            if i == len(tries) - 1 or (free and (not inside or _contains(frame, box))):
                break
            ann.remove()
        placed.append(box)
        out.append(ann)
    return out


def _contains(outer: Bbox, inner: Bbox) -> bool:
    return bool(
        outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0
        and inner.y1 <= outer.y1
    )  # fmt: skip


def _offsets(fontsize: float, tries: int = 200) -> Iterator[tuple[float, float]]:
    """Label offsets in points: beside the point, then one line further away at a time."""
    step = fontsize * 1.4
    for j in range(tries):
        for dy in (j * step, -j * step) if j else (0.0,):
            yield 5.0, dy
            yield -5.0, dy


def training_chart(runs: Sequence[TrainingRun]) -> bytes:
    """Loss (left axis) and validation metric (right axis) per epoch, one panel per model."""
    n = len(runs)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, run in zip(axes, runs, strict=False):
        hist = run.result.history
        epochs = [e.epoch for e in hist]
        ax.plot(epochs, [e.loss for e in hist], color=COLORS[0], marker=".", label="loss")
        ax.set(xlabel="epoch", ylabel="training loss", title=run.model)
        metric = [e.metric for e in hist]
        if any(m is not None for m in metric):
            twin = ax.twinx()
            twin.plot(epochs, [np.nan if m is None else m for m in metric], color=COLORS[1],
                      marker=".", label="validation")  # fmt: skip
            twin.set_ylabel("validation metric", color=COLORS[1])
            twin.axvline(run.result.best_epoch, color=COLORS[2], linestyle="--", linewidth=1)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return png(fig)
