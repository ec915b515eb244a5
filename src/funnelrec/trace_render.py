"""Readable views of a ``FunnelTrace``: the final slate and what each stage did, as compact
tables for the terminal (rich) and notebooks (HTML).

``TraceView`` holds plain rows (strings), so one view renders the same way in both places::

    view = trace.view(0)        # first query of the batch
    rich.print(view)            # terminal: two rich tables
    view                        # notebook: two HTML tables (``_repr_html_``)

The structured form for programs and ``--json`` stays ``FunnelTrace.explain``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO
from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from funnelrec import provenance
from funnelrec.data.ids import IdMap
from funnelrec.types import Candidates

if TYPE_CHECKING:
    from funnelrec.data.dataset import Dataset
    from funnelrec.trace import FunnelTrace

STAGE_COLUMNS = ("stage", "in", "kept", "moved", "inserted", "removed")
_TEXT_COLUMNS = ("item", "title", "channels", "reason")
_HTML_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #ddd"


@dataclass(frozen=True)
class TraceView:
    """Two small tables about one query of a trace.

    Attributes:
        title: one line naming the query (user, slate size).
        slate_columns, slate_rows: the final slate, one row per position (position, item id,
            title when the data has titles, channels that found it, score per stage, reason).
        stage_rows: one row per stage (``STAGE_COLUMNS``): candidates in, kept, moved,
            inserted, removed.
    """

    title: str
    slate_columns: tuple[str, ...]
    slate_rows: list[tuple[str, ...]]
    stage_rows: list[tuple[str, ...]]

    def tables(self, width: int = 100) -> tuple[Table, Table]:
        """The slate table and the per-stage table as rich ``Table``s, at most ``width``
        characters wide (text columns end in an ellipsis rather than wrap)."""
        slate = _table(self.title)
        widths = {
            c: max([len(c), *(len(r[i]) for r in self.slate_rows)])
            for i, c in enumerate(self.slate_columns)
        }
        text = {c: widths.pop(c) for c in _TEXT_COLUMNS[1:] if c in widths}
        room = width - sum(widths.values()) - 2 * len(self.slate_columns)
        limits = _share(text, room)
        rows = [list(r) for r in self.slate_rows]
        if "channels" in limits:  # name the channels that fit, then how many more;
            where = self.slate_columns.index("channels")  # the room they leave goes to the rest
            for cells in rows:
                cells[where] = fit_names(cells[where], limits["channels"])
            text["channels"] = max([len("channels"), *(len(c[where]) for c in rows)])
            limits = _share(text, room)
        for name in self.slate_columns:
            slate.add_column(
                name,
                justify="left" if name in _TEXT_COLUMNS else "right",
                no_wrap=True,
                overflow="ellipsis",
                max_width=limits.get(name),
            )
        for cells in rows:
            slate.add_row(*cells)
        stages = _table("What each stage did")
        for i, name in enumerate(STAGE_COLUMNS):
            stages.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
        for row in self.stage_rows:
            stages.add_row(*row)
        return slate, stages

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.tables(options.max_width)

    def to_text(self, width: int = 100) -> str:
        """Plain-text rendering (what the terminal shows, without colours)."""
        buffer = StringIO()
        Console(file=buffer, width=width, color_system=None).print(self)
        return buffer.getvalue()

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return (
            f"<div><b>{html.escape(self.title)}</b>"
            f"{_html_table(self.slate_columns, self.slate_rows)}"
            "<b>What each stage did</b>"
            f"{_html_table(STAGE_COLUMNS, self.stage_rows)}</div>"
        )


def _share(needed: dict[str, int], room: int, floor: int = 6) -> dict[str, int]:
    """Split ``room`` characters among text columns: each gets what it needs when all fit,
    else the columns that need less than an equal share keep their width and the rest
    share what is left (never under ``floor``)."""
    limits: dict[str, int] = {}
    left = dict(needed)
    while left:
        share = max((room - sum(limits.values())) // len(left), floor)
        small = {c: w for c, w in left.items() if w <= share}
        if not small:
            limits.update(dict.fromkeys(left, share))
            break
        limits.update(small)
        left = {c: w for c, w in left.items() if c not in small}
    return limits


def _table(title: str) -> Table:
    """A compact table: header rule only, one space between columns, no outer edge."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        title_style="bold",
    )


def _html_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain HTML table; text columns (and the first) left-aligned, numbers right."""
    align = ["left" if i == 0 or c in _TEXT_COLUMNS else "right" for i, c in enumerate(columns)]
    head = "".join(
        f'<th style="{_CELL_STYLE};text-align:{a}">{html.escape(c)}</th>'
        for c, a in zip(columns, align, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_CELL_STYLE};text-align:{a}">{html.escape(v)}</td>'
            for v, a in zip(row, align, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table style="{_HTML_STYLE}"><tr>{head}</tr>{body}</table>'


def trace_view(
    trace: FunnelTrace,
    row: int = 0,
    item_ids: IdMap | None = None,
    dataset: Dataset | None = None,
    user: str | None = None,
) -> TraceView:
    """The readable view of query ``row`` of ``trace``.

    Args:
        trace: a funnel trace (``Funnel.run``).
        row: which query of the batch.
        item_ids: item id map (default: the dataset's).
        dataset: where titles come from (an item-table ``title`` column); ``None`` shows ids.
        user: how to name the query in the title (default: ``query <row>``).

    Returns:
        A ``TraceView`` (rich renderable, ``_repr_html_``).
    """
    if item_ids is None:
        if dataset is None:
            raise ValueError("trace_view needs item_ids or a dataset")
        item_ids = dataset.item_ids
    slate = trace.slate if trace.slate is not None else trace.rank
    items = slate.row(row)[0]
    titles = _titles(dataset, items)
    columns, rows = _slate_rows(slate, row, item_ids, titles)
    name = user if user is not None else f"query {row}"
    return TraceView(
        title=f"Slate for {name} ({len(items)} items)",
        slate_columns=columns,
        slate_rows=rows,
        stage_rows=stage_rows(trace, row),
    )


def _titles(dataset: Dataset | None, items: np.ndarray) -> list[str] | None:
    if dataset is None or "title" not in dataset.items.columns or len(items) == 0:
        return None
    values = dataset.items["title"].gather(items.astype(np.int64)).to_list()
    return ["" if v is None else str(v) for v in values]


def _slate_rows(
    slate: Candidates, row: int, item_ids: IdMap, titles: list[str] | None
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    lo, hi = int(slate.offsets[row]), int(slate.offsets[row + 1])
    stages = [s for s in slate.stage_scores if s not in ("score",)]
    has_reason = slate.reasons is not None and any(slate.reasons[lo:hi])
    columns = ("#", "item", *(("title",) if titles else ()), "channels", *stages)
    columns = (*columns, "reason") if has_reason else columns
    ext = item_ids.external(slate.item_idx[lo:hi])
    rows: list[tuple[str, ...]] = []
    for j, i in enumerate(range(lo, hi)):
        cells = [str(j + 1), str(ext[j])]
        if titles:
            cells.append(titles[j])
        cells.append(", ".join(_channels(slate, i)))
        cells.extend(_fmt(slate.stage_scores[s][i]) for s in stages)
        if has_reason:
            assert slate.reasons is not None
            cells.append(str(slate.reasons[i] or ""))
        rows.append(tuple(cells))
    return columns, rows


def _channels(c: Candidates, i: int) -> list[str]:
    if c.channel_ranks is not None:
        return list(provenance.found_by(c, i))
    if c.source is not None and c.channels:
        return [c.channels[int(c.source[i])]]
    return []


def fit_names(text: str, width: int) -> str:
    """``"a, b, c, d"`` cut to ``width`` characters as ``"a, b +2"`` (whole names first,
    then how many more); rich adds an ellipsis if even one name does not fit."""
    names = text.split(", ")
    for keep in range(len(names), 0, -1):
        more = len(names) - keep
        short = ", ".join(names[:keep]) + (f" +{more}" if more else "")
        if len(short) <= width:
            return short
    return f"{names[0]} +{len(names) - 1}" if len(names) > 1 else text


def _fmt(value: float) -> str:
    return f"{float(value):.3f}"


def stage_rows(trace: FunnelTrace, row: int) -> list[tuple[str, ...]]:
    """One row per stage for query ``row``: name, in, kept, moved, inserted, removed.

    ``recall`` counts every channel's candidates in (duplicates included) and the merged set
    kept; each later stage compares its output with its input list (``moved``: kept items
    whose position changed; ``removed``: dropped by the stage or cut to its size).
    """
    n_in = sum(len(c.row(row)[0]) for c in trace.channels.values())
    n_merged = len(trace.merged.row(row)[0])
    rows: list[tuple[str, ...]] = [
        (
            f"recall ({len(trace.channels)} channels)",
            str(n_in),
            str(n_merged),
            "-",
            "-",
            str(n_in - n_merged),
        )
    ]
    steps = [("prerank", trace.prerank), ("rank", trace.rank), *trace.rerank_steps]
    previous = trace.merged
    for name, out in steps:
        rows.append((name, *(str(v) for v in step_counts(previous.row(row)[0], out.row(row)[0]))))
        previous = out
    return rows


def step_counts(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int, int]:
    """``(in, kept, moved, inserted, removed)`` between an input list and a stage's output.

    Args:
        before: ``[n]`` item ids the stage received, in order.
        after: ``[m]`` item ids it returned, in order.
    """
    b_pos = {int(item): p for p, item in enumerate(before.tolist())}
    a_items = [int(i) for i in after.tolist()]
    inserted = sum(1 for i in a_items if i not in b_pos)
    moved = sum(1 for p, i in enumerate(a_items) if i in b_pos and b_pos[i] != p)
    removed = len(before) - (len(a_items) - inserted)
    return len(before), len(a_items), moved, inserted, removed
