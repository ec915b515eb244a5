"""``FunnelTrace``: every stage's output for a batch, and per-request explanations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from funnelrec import provenance
from funnelrec.data.ids import IdMap
from funnelrec.ragged import IntArray
from funnelrec.types import Candidates, Slate

if TYPE_CHECKING:
    from funnelrec.data.dataset import Dataset
    from funnelrec.trace_render import TraceView


@dataclass(frozen=True)
class FunnelTrace:
    """What each stage produced for a batch of queries.

    Attributes:
        channels: each recall channel's raw candidates, by channel id.
        merged: the merged recall set (with provenance).
        prerank, rank: outputs of the scoring slots after their cut.
        rerank_steps: ``(name, output)`` of each re-ranker in chain order.
        slate: the final slate.
        dataset: the funnel's dataset (``Funnel.run`` sets it): external ids and item titles
            for ``view`` / ``explain``; ``None`` when built by hand.
        user_idx: ``[B]`` the queries' dense user ids (``-1``: unknown), to name them.

    In a notebook a trace shows its first query as two tables (``_repr_html_``);
    ``rich.print(trace.view(row))`` prints them in a terminal; ``explain`` gives the same
    query as JSON-able data.
    """

    channels: dict[str, Candidates]
    merged: Candidates
    prerank: Candidates
    rank: Candidates
    rerank_steps: list[tuple[str, Candidates]] = field(default_factory=list)
    slate: Slate | None = None
    dataset: Dataset | None = field(default=None, repr=False, compare=False)
    user_idx: IntArray | None = field(default=None, repr=False, compare=False)

    def stages(self) -> dict[str, Candidates]:
        """Stage name → candidates, in funnel order (``recall`` is the merged set)."""
        out: dict[str, Candidates] = {
            "recall": self.merged,
            "prerank": self.prerank,
            "rank": self.rank,
        }
        if self.slate is not None:
            out["rerank"] = self.slate
        return out

    @property
    def batch_size(self) -> int:
        return len(self.merged.offsets) - 1

    def view(
        self, row: int = 0, item_ids: IdMap | None = None, user: str | None = None
    ) -> TraceView:
        """Readable tables for query ``row``: the slate (ids, titles where the data has
        them, channels, per-stage scores, reasons) and one line per stage (candidates in,
        kept, moved, inserted, removed). Renders in rich and in notebooks."""
        from funnelrec.trace_render import trace_view

        if user is None and self.user_idx is not None and self.dataset is not None:
            u = int(self.user_idx[row])
            user = str(self.dataset.user_ids.external([u])[0]) if u >= 0 else "an unknown user"
        return trace_view(self, row, item_ids=item_ids, dataset=self.dataset, user=user)

    def __rich__(self) -> TraceView:
        return self.view(0)

    def _repr_html_(self) -> str:
        more = self.batch_size - 1
        note = f"<p>(query 0 of {self.batch_size}; trace.view(row) for the others)</p>"
        return self.view(0)._repr_html_() + (note if more > 0 else "")

    def explain(self, row: int, item_ids: IdMap | None = None, top: int = 20) -> dict[str, Any]:
        """JSON-able explanation of one query: channels, merged provenance, stage scores,
        re-rank moves, final slate with reasons (and titles where the data has them).

        ``item_ids`` defaults to the trace's dataset's."""
        if item_ids is None:
            if self.dataset is None:
                raise ValueError("explain needs item_ids for a trace without a dataset")
            item_ids = self.dataset.item_ids
        channels = {name: _items(c, row, item_ids, top) for name, c in self.channels.items()}
        merged = self.merged
        lo, hi = int(merged.offsets[row]), int(merged.offsets[row + 1])
        found = []
        for i in range(lo, min(hi, lo + top)):
            entry: dict[str, Any] = {
                "item": item_ids.external([merged.item_idx[i]])[0],
                "score": float(merged.scores[i]),
                "found_by": provenance.found_by(merged, i),
            }
            if merged.reasons is not None and merged.reasons[i]:
                entry["reason"] = str(merged.reasons[i])
            found.append(entry)
        steps = []
        previous = self.rank
        for name, out in self.rerank_steps:
            steps.append({"reranker": name, **_moves(previous, out, row, item_ids)})
            previous = out
        return {
            "channels": channels,
            "merged": found,
            "prerank": _items(self.prerank, row, item_ids, top),
            "rank": _items(self.rank, row, item_ids, top),
            "rerank": steps,
            "slate": self._slate(row, item_ids),
        }

    def _slate(self, row: int, item_ids: IdMap) -> list[dict[str, Any]]:
        if self.slate is None:
            return []
        entries = _slate(self.slate, row, item_ids)
        ds = self.dataset
        if ds is not None and "title" in ds.items.columns and entries:
            titles = ds.items["title"].gather(self.slate.row(row)[0]).to_list()
            for entry, title in zip(entries, titles, strict=True):
                if title is not None:
                    entry["title"] = title
        return entries


def _items(c: Candidates, row: int, item_ids: IdMap, top: int) -> list[dict[str, Any]]:
    items, scores = c.row(row)
    ext = item_ids.external(items[:top])
    out: list[dict[str, Any]] = [
        {"item": e, "score": float(s)} for e, s in zip(ext, scores[:top], strict=True)
    ]
    if c.reasons is not None:  # e.g. which interest or meta-path found it
        lo = int(c.offsets[row])
        for j, entry in enumerate(out):
            if c.reasons[lo + j]:
                entry["reason"] = str(c.reasons[lo + j])
    return out


def _slate(slate: Slate, row: int, item_ids: IdMap) -> list[dict[str, Any]]:
    lo, hi = int(slate.offsets[row]), int(slate.offsets[row + 1])
    out = []
    for pos, i in enumerate(range(lo, hi)):
        entry: dict[str, Any] = {
            "position": pos + 1,
            "item": item_ids.external([slate.item_idx[i]])[0],
            "score": float(slate.scores[i]),
            "stage_scores": {k: float(v[i]) for k, v in slate.stage_scores.items()},
        }
        if slate.channel_ranks is not None:
            entry["channels"] = list(provenance.found_by(slate, i))
        if slate.reasons is not None and slate.reasons[i]:
            entry["reason"] = str(slate.reasons[i])
        out.append(entry)
    return out


def _moves(before: Candidates, after: Candidates, row: int, item_ids: IdMap) -> dict[str, Any]:
    """Items a re-ranker removed, inserted and moved (positions 1-based).

    ``removed``: items gone from above the output's length (the rule dropped them);
    ``below_cut``: items gone from further down (dropped by the rule or cut to the list
    size); ``received`` / ``kept``: list lengths before and after the step.
    """
    b_items = before.row(row)[0].tolist()
    a_items = after.row(row)[0].tolist()
    b_pos = {item: p for p, item in enumerate(b_items)}
    a_set = set(a_items)
    cut = len(a_items)
    removed = [i for i in b_items if i not in a_set and b_pos[i] < cut]
    inserted = [i for i in a_items if i not in b_pos]
    moved = [
        (i, b_pos[i] + 1, p + 1) for p, i in enumerate(a_items) if i in b_pos and b_pos[i] != p
    ]
    below = [i for i in b_items if i not in a_set and b_pos[i] >= cut]
    return {
        "received": len(b_items),
        "kept": cut,
        "removed": item_ids.external(removed),
        "below_cut": item_ids.external(below),
        "inserted": item_ids.external(inserted),
        "moved": [{"item": item_ids.external([i])[0], "from": f, "to": t} for i, f, t in moved],
    }
