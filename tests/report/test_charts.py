"""The accuracy-vs-diversity chart: stage labels never overprint, however close the points."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, cast

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from funnelrec.report.build import RunReport
from funnelrec.report.charts import place_labels, tradeoff_chart, tradeoff_figure
from funnelrec.report.stages import StageQuality


@dataclass
class _Run:
    """The part of a ``RunReport`` the trade-off chart reads."""

    name: str
    stages: list[StageQuality]
    k: int = 10
    extra: dict[str, Any] = field(default_factory=dict)


def _stage(name: str, recall: float, diversity: float, coverage: float) -> StageQuality:
    return StageQuality(
        name, {"recall@10": recall, "diversity@10": diversity, "coverage@10": coverage}
    )


def _runs() -> list[RunReport]:
    # every stage of both runs but one within 0.0006 of each other (the far one sets the
    # scale): drawn at their points, the labels would all overprint
    names = ["recall", "prerank", "rank", "rerank:seen_filter", "rerank:mmr", "final"]
    runs = []
    for r, run in enumerate(("stacked", "distilled")):
        stages = [_stage(n, 0.2 + 1e-4 * i, 0.5 + 1e-4 * (i + r), 0.1) for i, n in enumerate(names)]
        runs.append(_Run(run, stages))
    runs[0].stages[0] = _stage("recall", 0.05, 0.9, 0.4)
    return cast(list[RunReport], runs)


def _overlapping(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of labels whose drawn boxes intersect (per axes)."""
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    canvas.draw()
    renderer = canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in ax.texts]
        assert boxes, "the chart has stage labels"
        for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
            if ba.overlaps(bb):
                pairs.append((a, b))
    return pairs


def test_tradeoff_labels_of_nearly_identical_points_do_not_overlap() -> None:
    fig = tradeoff_figure(_runs())
    assert len(fig.axes[0].texts) == 12  # every stage of both runs is labelled
    assert _overlapping(fig) == []


def test_place_labels_separates_coincident_points() -> None:
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.scatter([1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 2.0])
    labels = place_labels(ax, [("a", 1, 1), ("bb", 1, 1), ("ccc", 1, 1), ("d", 2, 2)])
    assert [t.get_text() for t in labels] == ["a", "bb", "ccc", "d"]
    assert _overlapping(fig) == []


def test_tradeoff_chart_is_a_png() -> None:
    assert tradeoff_chart(_runs())[:8] == b"\x89PNG\r\n\x1a\n"
