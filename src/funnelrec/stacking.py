"""Recall as the funnel runs it, and the training lists of the stages after recall.

* ``retrieve_channels`` / ``merge_channels`` / ``annotate``: each channel's candidates, the
  merged set, and the merged set with every channel's own evidence in ``stage_scores``
  (``ch:<id>`` the channel's score where it found the item, 0 elsewhere; for channels that
  can score any item (``score_items``: embedding and sequence models, item-CF, user-CF,
  ALS, EASE) ``cs:<id>`` the channel's score of *every* candidate; for channels with item
  vectors ``sim_max:<id>`` / ``sim_mean:<id>`` the cosine of the candidate to the user's
  last items). ``Funnel`` uses
  the same functions at serving time, so ranker features never differ between training and
  serving.
* ``oof_examples``: out-of-fold lists. For fold ``f`` (``1..folds``) every user's last
  ``f·holdout`` items are cut off, fresh channels are fitted on what is left, they retrieve
  for the cut point, and the next ``holdout`` items label the list. Channel scores in these
  lists are as (un)reliable as they are at serving time, unlike in-sample lists, where the
  channels have seen the labels.
* ``insample_examples``: the same lists built with the channels fitted on everything.
* ``valid_examples``: the funnel's lists for the validation users (history = training
  part), labelled by their validation items: the serving-time view, for early stopping.
* ``FitMemo``: fitted channels and training lists kept by what determines them (the data's
  fingerprint and the config), so repeated fits of similar funnels (``funnelrec tune``)
  reuse them; ``fit_channels`` and ``Funnel(memo=...)`` go through it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import numpy as np

from funnelrec import provenance, ragged
from funnelrec.config import ChannelConfig, FitConfig, RecallConfig
from funnelrec.context import FitContext, fit_stage
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.recall.base import RecallChannel
from funnelrec.recall.merge import ChannelResult, merge
from funnelrec.registry import RECALL
from funnelrec.train.examples import Examples, concat, cut_examples, prefix_queries, retrieve_all
from funnelrec.types import Candidates, Query

RetrieveFn = Callable[[Query], Candidates]
Channels = Mapping[str, RecallChannel[Any]]
RECENT = 10  # history items the similarity features compare a candidate with
T = TypeVar("T")


class FitMemo:
    """Results of fits by key, at most ``size`` of each kind (the key's first element:
    ``"channel"``, ``"oof"``, ``"valid"``), least recently used dropped first; ``lists``
    caps the training-list kinds (large). ``FitMemo.none()`` remembers nothing.

    Keys name everything a result depends on (see ``channel_key``): a hit returns the very
    object built before, so it must not be changed by its users (fitted stages are not)."""

    def __init__(self, size: int = 24, lists: int = 2) -> None:
        self.size, self.lists = size, lists
        self._kinds: dict[Hashable, OrderedDict[tuple[Hashable, ...], Any]] = {}
        self.hits = 0

    @classmethod
    def none(cls) -> FitMemo:
        return cls(size=0, lists=0)

    def get(self, key: tuple[Hashable, ...], build: Callable[[], T]) -> T:
        """The result kept under ``key``, or ``build()`` (then kept, within the caps)."""
        kind = self._kinds.setdefault(key[0], OrderedDict())
        if key in kind:
            kind.move_to_end(key)
            self.hits += 1
            out: T = kind[key]
            return out
        value = build()
        cap = self.size if key[0] == "channel" else self.lists
        if cap > 0:
            kind[key] = value
            while len(kind) > cap:
                kind.popitem(last=False)
        return value


def config_key(value: Any) -> str:
    """A stable text key of a config value (pydantic model, mapping, list or scalar)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, default=str)


def channel_key(channel: ChannelConfig, data: Dataset) -> tuple[Hashable, ...]:
    """What a fitted channel depends on: its stage, params (defaults filled in) and the data
    it was fitted on."""
    params = RECALL.get(channel.name).validate_params(dict(channel.params))
    return ("channel", data.fingerprint, channel.name, config_key(params))


def fit_channels(
    rc: RecallConfig, data: Dataset, memo: FitMemo | None = None
) -> dict[str, RecallChannel[Any]]:
    """The channels of ``rc`` fitted on ``data`` (through ``memo`` when given)."""
    memo = memo or FitMemo.none()

    def build(c: ChannelConfig) -> Callable[[], RecallChannel[Any]]:
        def fitted() -> RecallChannel[Any]:
            channel: RecallChannel[Any] = RECALL.create(c.name, c.params)
            fit_stage(channel, data, FitContext())
            return channel

        return fitted

    return {c.id: memo.get(channel_key(c, data), build(c)) for c in rc.channels}


def retrieve_channels(channels: Channels, rc: RecallConfig, query: Query) -> dict[str, Candidates]:
    """Every channel's raw candidates (quota × overfetch items each)."""
    quotas = rc.quotas()
    out = {}
    for cid, channel in channels.items():
        k = max(int(np.ceil(quotas[cid] * rc.overfetch)), 1)
        out[cid] = dataclasses.replace(channel.retrieve(query, k), channels=(cid,))
    return out


def merge_channels(rc: RecallConfig, per_channel: Mapping[str, Candidates]) -> Candidates:
    """The merged recall set (quotas, dedup, provenance, fused score)."""
    quotas = rc.quotas()
    results = [ChannelResult(c.id, per_channel[c.id], quotas[c.id], c.weight) for c in rc.channels]
    return merge(results, rc.normalisation, total=rc.total if rc.backfill else None)


def annotate(
    query: Query, merged: Candidates, per_channel: Mapping[str, Candidates], channels: Channels
) -> Candidates:
    """``merged`` with each channel's evidence about every candidate (see module doc)."""
    scores = dict(merged.stage_scores)
    for cid, cands in per_channel.items():
        m = provenance.locate(merged.offsets, merged.item_idx, cands)
        own = np.zeros(len(merged), dtype=np.float32)
        own[m.found] = np.nan_to_num(cands.scores[m.src[m.found]], neginf=0.0, posinf=0.0)
        scores[f"ch:{cid}"] = own
        channel = channels[cid]
        if hasattr(channel, "score_items"):
            scores[f"cs:{cid}"] = channel.score_items(query, merged)
        if hasattr(channel, "item_vectors"):
            mx, mean = _history_similarity(query, merged, channel.item_vectors)
            scores[f"sim_max:{cid}"], scores[f"sim_mean:{cid}"] = mx, mean
    return dataclasses.replace(merged, stage_scores=scores)


def funnel_recall(channels: Channels, rc: RecallConfig, exclude_seen: bool = True) -> RetrieveFn:
    """``query -> merged, annotated recall`` with these channels; ``exclude_seen = False``
    (repeat consumption) lets the channels return the query's own history, as
    ``Funnel.retrieve_channels`` does at serving time."""

    def retrieve(query: Query) -> Candidates:
        if not exclude_seen:
            query = query.without_exclusions()
        per_channel = retrieve_channels(channels, rc, query)
        return annotate(query, merge_channels(rc, per_channel), per_channel, channels)

    return retrieve


def _history_similarity(
    query: Query, cands: Candidates, vectors: Callable[[IntArray], FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """``[N]`` max and mean cosine of each candidate to its query's last ``RECENT`` items."""
    n = len(cands)
    if n == 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
    h_off, h_items, _ = query.recent_history(RECENT)
    items = np.unique(np.concatenate([cands.item_idx, h_items]))
    vecs = np.asarray(vectors(items), dtype=np.float32)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    lens = ragged.lengths(h_off)
    hist = np.zeros((query.batch_size, RECENT, vecs.shape[1]), dtype=np.float32)
    rows = ragged.row_ids(h_off)
    hist[rows, ragged.position_in_row(h_off)] = vecs[np.searchsorted(items, h_items)]
    c_rows = cands.row_ids()
    c_vec = vecs[np.searchsorted(items, cands.item_idx)]
    sims = np.einsum("nd,nkd->nk", c_vec, hist[c_rows])  # [N, RECENT]
    valid = np.arange(RECENT)[None, :] < lens[c_rows][:, None]
    mx = np.where(valid, sims, -np.inf).max(axis=1, initial=-np.inf)
    mean = np.where(valid, sims, 0.0).sum(axis=1) / np.maximum(lens[c_rows], 1)
    return np.where(np.isfinite(mx), mx, 0.0).astype(np.float32), mean.astype(np.float32)


# -- training lists -----------------------------------------------------------------------
def inner_dataset(dataset: Dataset, cut: int) -> tuple[Dataset, IntArray, IntArray]:
    """``dataset`` minus every user's last ``cut`` items (time order; users with at most
    ``cut`` items keep theirs), the users with a cut and their cut positions."""
    order = dataset.time_order
    offsets = dataset.sequences[0]
    lens = ragged.lengths(offsets)
    row_user = ragged.row_ids(offsets)
    from_end = (lens[row_user] - 1) - ragged.position_in_row(offsets)
    keep = (from_end >= cut) | (lens[row_user] <= cut)
    inner = dataset.with_interactions(dataset.interactions[np.sort(order[keep])])
    users = np.flatnonzero(lens > cut).astype(np.int64)
    return inner, users, (lens[users] - cut).astype(np.int64)


def oof_examples(
    dataset: Dataset,
    rc: RecallConfig,
    fit: FitConfig,
    seed: int,
    log: dict[str, Any],
    memo: FitMemo | None = None,
    exclude_seen: bool = True,
) -> Examples:
    """Out-of-fold training lists (see module doc); ``log`` receives per-fold sizes; the
    inner channels are fitted through ``memo``; ``exclude_seen``: the funnel's setting
    (``False``: the lists may hold the user's own items, as served).

    With ``fit.channel_fits = "once"`` the channels are fitted a single time, on the data
    before the deepest cut, and serve every fold (no channel sees any held-out item; a
    fold's query still carries its whole history up to its own cut); ``"per_fold"``
    refits them for every cut."""
    parts = []
    channels: dict[str, RecallChannel[Any]] = {}
    if fit.channel_fits == "once":
        channels = fit_channels(rc, inner_dataset(dataset, fit.folds * fit.holdout)[0], memo)
    for fold in range(fit.folds):
        cut = (fold + 1) * fit.holdout
        inner, users, pos = inner_dataset(dataset, cut)
        users, pos = _limit(users, pos, fit.max_queries, seed + fold)
        if fit.channel_fits == "per_fold":
            channels = fit_channels(rc, inner, memo)
        ex = cut_examples(
            dataset, funnel_recall(channels, rc, exclude_seen), users, pos, horizon=fit.holdout,
            max_neg=fit.max_neg, n_random=0, seed=seed + fold, now=inner.max_timestamp,
        )  # fmt: skip
        log.setdefault("folds", []).append(_summary(ex))
        parts.append(ex)
    return parts[0] if len(parts) == 1 else concat(parts)


def insample_examples(
    dataset: Dataset, retrieve: RetrieveFn, fit: FitConfig, seed: int, log: dict[str, Any]
) -> Examples:
    """The same cuts as ``oof_examples`` but with channels fitted on the whole part (leaky)."""
    parts = []
    for fold in range(fit.folds):
        _, users, pos = inner_dataset(dataset, (fold + 1) * fit.holdout)
        users, pos = _limit(users, pos, fit.max_queries, seed + fold)
        ex = cut_examples(
            dataset, retrieve, users, pos, horizon=fit.holdout, max_neg=fit.max_neg,
            n_random=0, seed=seed + fold, now=dataset.max_timestamp,
        )  # fmt: skip
        log.setdefault("folds", []).append(_summary(ex))
        parts.append(ex)
    return parts[0] if len(parts) == 1 else concat(parts)


def valid_examples(
    dataset: Dataset, valid: Dataset | None, retrieve: RetrieveFn
) -> Examples | None:
    """Lists of the validation users (history = ``dataset``) labelled by ``valid``."""
    if valid is None or len(valid) == 0:
        return None
    users = np.unique(valid.arrays.user_idx).astype(np.int64)
    lens = ragged.lengths(dataset.sequences[0])
    users = users[lens[users] > 0]
    query = prefix_queries(dataset, users, lens[users])
    query = dataclasses.replace(query, now=np.full(len(users), dataset.max_timestamp))
    cands = retrieve_all(retrieve, query)
    mat = valid.user_item[users]
    labels = ragged.membership(cands.offsets, cands.item_idx, mat.indptr, mat.indices)
    return Examples(query, cands, labels.astype(np.float32))


def _limit(users: IntArray, pos: IntArray, limit: int, seed: int) -> tuple[IntArray, IntArray]:
    if len(users) <= limit:
        return users, pos
    keep = np.sort(np.random.default_rng(seed).choice(len(users), limit, replace=False))
    return users[keep], pos[keep]


def _summary(ex: Examples) -> dict[str, float]:
    rows = ex.candidates.row_ids()
    has_pos = np.bincount(rows[ex.labels > 0], minlength=ex.query.batch_size) > 0
    return {
        "queries": int(ex.query.batch_size),
        "rows": len(ex.labels),
        "recall_hit_rate": float(has_pos.mean()) if len(has_pos) else 0.0,
    }
