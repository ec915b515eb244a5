"""Scheduled refit with a guarded hot swap (``funnelrec refit``, ``serve --refit-every``).

One round:

1. load the latest data (``--data`` specs: a base dataset and/or the serving store);
2. cut a **recent temporal holdout**: the events newer than the serving model's data (when
   at least ``min_holdout_events``), else the latest ``holdout_share`` of events;
3. fit a candidate on everything before the cut, in a **child process at low priority**
   (``os.nice``), so serving keeps its cores;
4. evaluate the candidate and the serving model on the holdout the same way: each holdout
   user's history before the cut, full ranking, recall@k of the items they took after it;
5. accept only if ``candidate >= serving * (1 - margin)``; an accepted candidate is refitted
   on all data (``final_fit``) and **published** in the store (``artifacts``), so every
   server process sharing the store hot-swaps it (serve/sync.py; in-flight requests keep
   the old model). Every decision is published too (``refit:accepted`` / ``refit:rejected``
   / ``refit:failed``; ``/metrics`` shows the counts) and appended to ``decisions.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from funnelrec import ragged
from funnelrec.config import load_config
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError, DataError
from funnelrec.eval import metrics
from funnelrec.loop.data import load_specs
from funnelrec.pipeline import Funnel
from funnelrec.serve.store.base import open_store
from funnelrec.types import Query

log = logging.getLogger(__name__)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"6h"``, ``"30m"``, ``"45s"``, ``"1d"`` or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"bad duration {text!r}: use e.g. 45s, 30m, 6h, 1d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclass(frozen=True)
class RefitPlan:
    """What one refit round needs.

    Attributes:
        config: funnel config of the candidate.
        data: ``--data`` specs (base dataset and/or store URLs).
        serving: the serving artifact directory (compared against).
        out: directory that receives candidate artifacts (``gen-<time>``) and decisions.
        store: store URL to publish decisions and accepted artifacts to (``None``: don't).
        holdout_share: share of the latest events held out (fallback cut).
        min_holdout_events: events newer than the serving model's data needed to cut there.
        margin: relative tolerance of the acceptance rule.
        k: list length of the holdout metric.
        final_fit: refit an accepted candidate on all data before publishing it.
        nice: niceness increment of the fitting child process.
        examined_only: train on examined impressions only (position-bias correction).
    """

    config: Path
    data: tuple[str, ...]
    serving: Path
    out: Path
    store: str | None = None
    holdout_share: float = 0.1
    min_holdout_events: int = 20
    margin: float = 0.02
    k: int = 10
    final_fit: bool = True
    nice: int = 10
    examined_only: bool = True


@dataclass(frozen=True)
class Decision:
    accepted: bool
    serving_recall: float
    candidate_recall: float
    artifacts: str | None
    candidate: str
    holdout_users: int
    cut: float
    fit_s: float
    reason: str


def holdout_cut(dataset: Dataset, share: float) -> float:
    """Timestamp at which the latest ``share`` of events begins."""
    if not 0 < share < 1:
        raise ConfigError(f"holdout share must be in (0, 1), got {share}")
    ts = np.sort(dataset.arrays.timestamp)
    if len(ts) < 2:
        raise DataError(f"{dataset.name}: too few events for a holdout ({len(ts)})")
    return float(ts[min(int(len(ts) * (1 - share)), len(ts) - 1)])


def choose_cut(dataset: Dataset, serving_until: float, plan: RefitPlan) -> float:
    """The holdout starts after the serving model's data when enough events came since
    (then both models are judged on events neither has seen), else at the latest
    ``holdout_share`` of events."""
    after = float(np.nextafter(serving_until, np.inf))
    if int((dataset.arrays.timestamp >= after).sum()) >= plan.min_holdout_events:
        return after
    return holdout_cut(dataset, plan.holdout_share)


def before(dataset: Dataset, cut: float) -> Dataset:
    """Events (and impressions) strictly before ``cut``."""
    imp = dataset.impressions
    return dataset.replace(
        interactions=dataset.interactions.filter(pl.col("timestamp") < cut),
        impressions=None if imp is None else imp.filter(pl.col("timestamp") < cut),
    )


def holdout_recall(funnel: Funnel, dataset: Dataset, cut: float, k: int) -> tuple[float, int]:
    """Recall@k of ``funnel`` on the events at/after ``cut`` of users with history before it.

    Histories, users and items are matched to the funnel by external id (a funnel fitted on
    other data may not know every item: unknown history items are skipped, unknown truth
    items count as missed).
    """
    past, future = (
        before(dataset, cut),
        dataset.replace(interactions=dataset.interactions.filter(pl.col("timestamp") >= cut)),
    )
    users = np.intersect1d(np.unique(future.arrays.user_idx), np.unique(past.arrays.user_idx))
    if len(users) == 0:
        return 0.0, 0
    query = _query_in(funnel, past, users, k, cut)
    slate = funnel.recommend(query)
    ext = funnel.dataset.item_ids.external(slate.item_idx)
    mapped = dataset.item_ids.lookup(ext)
    topk = ragged.to_dense(slate.offsets, mapped, k, -1)
    truth = future.user_item[users]
    scores = metrics.ranking_metrics(topk, truth.indptr, truth.indices, ks=(k,))
    return scores[f"recall@{k}"], len(users)


def _query_in(funnel: Funnel, past: Dataset, users: np.ndarray, k: int, now: float) -> Query:
    """A query for ``users`` (dense in ``past``) in ``funnel``'s id space."""
    q = past.query(users, k, now=now)
    own = funnel.dataset
    u = own.user_ids.lookup(past.user_ids.external(users))
    hist = own.item_ids.lookup(past.item_ids.external(q.history_items))
    keep = hist >= 0
    rows = ragged.row_ids(q.history_offsets)[keep]
    offsets = ragged.offsets_from_row_ids(rows, len(users))
    return dataclasses.replace(
        q,
        user_idx=u,
        history_offsets=offsets,
        history_items=hist[keep],
        history_ts=q.history_ts[keep],
        exclude_offsets=offsets,
        exclude_items=hist[keep],
    )


def _fit_child(
    config: str, data: list[str], until: float | None, out: str, nice: int, examined: bool
) -> None:
    """Child process: load, (cut), fit, save. Runs at lower priority."""
    if nice:
        os.nice(nice)
    dataset = load_specs(data, examined_only=examined)
    if until is not None:
        dataset = before(dataset, until)
    Funnel(load_config(config)).fit(dataset).save(out)


def fit_in_child(plan: RefitPlan, until: float | None, out: Path) -> float:
    """Fit in a spawned low-priority process; returns seconds (``DataError`` if it fails)."""
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    args = (str(plan.config), list(plan.data), until, str(out), plan.nice, plan.examined_only)
    proc = ctx.Process(target=_fit_child, args=args, name="funnelrec-refit-fit")
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise DataError(f"refit: fitting the candidate failed (exit code {proc.exitcode})")
    return time.perf_counter() - start


def refit_once(plan: RefitPlan) -> Decision:
    """One guarded refit round (see the module doc)."""
    dataset = load_specs(list(plan.data), examined_only=plan.examined_only)
    serving = Funnel.load(plan.serving)
    cut = choose_cut(dataset, serving.dataset.max_timestamp, plan)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
    candidate_dir = plan.out / f"candidate-{stamp}"
    fit_s = fit_in_child(plan, cut, candidate_dir)
    candidate = Funnel.load(candidate_dir)
    serve_r, n_users = holdout_recall(serving, dataset, cut, plan.k)
    cand_r, _ = holdout_recall(candidate, dataset, cut, plan.k)
    accepted = cand_r >= serve_r * (1 - plan.margin)
    artifacts = None
    if accepted:
        final = plan.out / f"gen-{stamp}"
        if plan.final_fit:
            fit_s += fit_in_child(plan, None, final)
        else:
            candidate_dir.rename(final)
        artifacts = str(final.absolute())  # the link, not one version of it
    rule = f"candidate {cand_r:.4f} vs serving {serve_r:.4f} (margin {plan.margin:.0%})"
    decision = Decision(
        accepted, serve_r, cand_r, artifacts, str(candidate_dir), n_users, cut, fit_s,
        ("accepted: " if accepted else "rejected: ") + rule,
    )  # fmt: skip
    record(plan, decision)
    return decision


def record(plan: RefitPlan, decision: Decision) -> None:
    """Log the decision, append it to ``decisions.jsonl`` and publish it (and an accepted
    artifact) in the store."""
    log.info("refit %s", decision.reason)
    plan.out.mkdir(parents=True, exist_ok=True)
    with (plan.out / "decisions.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": time.time(), **dataclasses.asdict(decision)}) + "\n")
    if plan.store is None:
        return
    store = open_store(plan.store)
    try:
        key = "refit:accepted" if decision.accepted else "refit:rejected"
        store.publish(key, json.dumps(dataclasses.asdict(decision)))
        if decision.artifacts:
            store.publish("artifacts", decision.artifacts)
    finally:
        store.close()


def record_failure(store_url: str | None, message: str) -> None:
    """Count a failed round (``refit:failed``) in the store."""
    if store_url is None:
        return
    store = open_store(store_url)
    try:
        store.publish("refit:failed", message)
    finally:
        store.close()
