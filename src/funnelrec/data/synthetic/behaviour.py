"""Behaviour of the synthetic world: sessions in time, the next-click choice, feedback, exposures.

Each user's events fall into sessions inside the user's active window. The next click is
chosen by one of a few habits: the next part of the last item's series, an item related to the
last one (same creator / category), another item of the last item's category (likely within a
session, less after a break), an item by a favourite creator, a fresh item, a random popular
item, or an item of one of the user's interests. Inside a group, items are drawn in proportion
to exposure x quality among those already created. A user never clicks the same item twice
(up to rare fallbacks). Non-clicked exposures are added per item so that its click-through
rate is its quality, and placed into the slates of same-category clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec.data.synthetic.world import DAY, F64, Catalogue, Population, PrefixSampler, WorldSpec
from funnelrec.ragged import BoolArray, IntArray, offsets_from_lengths

SERIES, RELATED, STAY, CREATOR, FRESH, EXPLORE, INTEREST, ANY = range(8)
_FALLBACK = (INTEREST,) * 3 + (EXPLORE,) * 2 + (ANY,) * 4  # after a rejected first choice


def event_times(
    pop: Population, spec: WorldSpec, rng: np.random.Generator
) -> tuple[F64, BoolArray]:
    """Integer event times (user-major order) and whether each event starts a new session.

    Within a session gaps are exponential (``mean_gap_s``); the session breaks share the rest
    of the user's active window.
    """
    n = int(pop.n_events.sum())
    off = offsets_from_lengths(pop.n_events)
    uid = np.repeat(np.arange(len(pop.n_events)), pop.n_events)
    first = np.zeros(n, dtype=bool)
    first[off[:-1]] = True
    brk = (rng.random(n) < spec.session_break) & ~first
    small = np.where(brk | first, 0.0, rng.exponential(spec.mean_gap_s, n))
    big = np.where(brk, rng.exponential(1.0, n), 0.0)
    sum_big = np.bincount(uid, big, minlength=len(off) - 1)
    sum_small = np.bincount(uid, small, minlength=len(off) - 1)
    room = np.maximum(pop.window_length - sum_small, 0.0)
    scale = np.where(sum_big > 0, room / np.maximum(sum_big, 1e-12), 0.0)
    cum = np.cumsum(small + big * scale[uid])
    t = pop.window_start[uid] + cum - cum[off[:-1]][uid]
    return np.floor(np.minimum(t, spec.span_days * DAY - 1)), brk


class _Seen:
    """Set of (user, item) pairs as a bitmap: exact when small, hashed (false positives only)."""

    def __init__(self, n_users: int, n_items: int, n_events: int) -> None:
        self._n_items = n_items
        exact = n_users * n_items
        self._bits = 0 if exact <= 1 << 26 else max(20, int(np.ceil(np.log2(16 * n_events))))
        self._mask = np.zeros(exact if self._bits == 0 else 1 << self._bits, dtype=bool)

    def _slot(self, users: IntArray, items: IntArray) -> IntArray:
        key = users * self._n_items + items
        if self._bits == 0:
            return key
        mixed = key.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (mixed >> np.uint64(64 - self._bits)).astype(np.int64)

    def contains(self, users: IntArray, items: IntArray) -> BoolArray:
        return self._mask[self._slot(users, items)]

    def add(self, users: IntArray, items: IntArray) -> None:
        self._mask[self._slot(users, items)] = True


@dataclass
class _World:
    """Everything a step needs: latent state, samplers by group and the seen set."""

    cat: Catalogue
    pop: Population
    spec: WorldSpec
    by_category: PrefixSampler
    by_creator: PrefixSampler
    anywhere: PrefixSampler
    uniform: PrefixSampler
    seen: _Seen
    mode_cum: F64  # [2, 6] cumulative mode probabilities: within a session / after a break


def _make_world(cat: Catalogue, pop: Population, spec: WorldSpec) -> _World:
    weight = cat.exposure * cat.quality
    s = spec
    probs = [
        [s.p_series, s.p_related, stay, s.p_creator, s.p_fresh, s.p_explore]
        for stay in (s.p_stay, s.p_stay_new_session)
    ]
    return _World(
        cat=cat,
        pop=pop,
        spec=spec,
        by_category=PrefixSampler(cat.category, cat.created, weight),
        by_creator=PrefixSampler(cat.creator, cat.created, weight),
        anywhere=PrefixSampler(np.zeros(cat.n_items, np.int64), cat.created, weight),
        uniform=PrefixSampler(np.zeros(cat.n_items, np.int64), cat.created, np.ones(cat.n_items)),
        seen=_Seen(len(pop.n_events), cat.n_items, int(pop.n_events.sum())),
        mode_cum=np.cumsum(np.asarray(probs), axis=1),
    )


def _interest_slot(w: _World, users: IntArray, rng: np.random.Generator) -> IntArray:
    """Index of one interest per user, drawn by the user's mixture weights."""
    cum = np.cumsum(w.pop.interest_weight[users], axis=1)
    slot: IntArray = np.minimum((rng.random(len(users))[:, None] > cum).sum(1), cum.shape[1] - 1)
    return slot


def _from_last(
    w: _World, mode: int, tau: F64, last: IntArray, rng: np.random.Generator
) -> IntArray:
    """Habits that follow the last item: its series successor, a related item, its category."""
    prev = np.maximum(last, 0)
    if mode == STAY:
        out = w.by_category.draw(w.cat.category[prev], tau, rng)
    else:
        col = rng.integers(0, w.cat.related.shape[1], len(last))
        out = w.cat.successor[prev] if mode == SERIES else w.cat.related[prev, col]
        out = np.where((out >= 0) & (w.cat.created[np.maximum(out, 0)] <= tau), out, -1)
    return np.where(last >= 0, out, -1)


def _propose(
    w: _World, mode: int, users: IntArray, tau: F64, last: IntArray, rng: np.random.Generator
) -> IntArray:
    """Candidate next item for users that all follow habit ``mode`` (``-1``: none possible)."""
    if mode in (SERIES, RELATED, STAY):
        return _from_last(w, mode, tau, last, rng)
    if mode in (EXPLORE, ANY):
        sampler = w.anywhere if mode == EXPLORE else w.uniform
        return sampler.draw(np.zeros(len(users), np.int64), tau, rng)
    slot = _interest_slot(w, users, rng)
    if mode == CREATOR:
        return w.by_creator.draw(w.pop.favourite_creator[users, slot], tau, rng)
    group = w.pop.interests[users, slot]
    t_lo = tau - w.spec.fresh_days * DAY if mode == FRESH else None
    return w.by_category.draw(group, tau, rng, t_lo)


def _propose_mixed(
    w: _World, modes: IntArray, users: IntArray, tau: F64, last: IntArray, rng: np.random.Generator
) -> IntArray:
    out = np.full(len(users), -1, dtype=np.int64)
    for mode in np.unique(modes):
        sel = np.flatnonzero(modes == mode)
        out[sel] = _propose(w, int(mode), users[sel], tau[sel], last[sel], rng)
    return out


def _step(
    w: _World, users: IntArray, tau: F64, brk: BoolArray, last: IntArray, rng: np.random.Generator
) -> IntArray:
    """Next click of every user in the batch; unseen items first, re-consumption as last resort."""
    cum = w.mode_cum[brk.astype(np.int64)]
    modes = (rng.random(len(users))[:, None] >= cum).sum(1)
    out = np.full(len(users), -1, dtype=np.int64)
    todo = np.arange(len(users))
    for attempt in range(len(_FALLBACK) + 1):
        if attempt:
            modes = np.full(len(todo), _FALLBACK[attempt - 1])
        cand = _propose_mixed(w, modes, users[todo], tau[todo], last[todo], rng)
        ok = cand >= 0
        ok[ok] = ~w.seen.contains(users[todo][ok], cand[ok])
        out[todo[ok]] = cand[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            return out
    out[todo] = w.anywhere.draw(np.zeros(len(todo), np.int64), tau[todo], rng)
    return out


def simulate_clicks(
    cat: Catalogue, pop: Population, spec: WorldSpec, rng: np.random.Generator
) -> tuple[IntArray, IntArray, F64]:
    """Clicked ``(user, item, time)`` in user-major order, one vectorised step per position."""
    w = _make_world(cat, pop, spec)
    times, brk = event_times(pop, spec, rng)
    off = offsets_from_lengths(pop.n_events)
    order = np.argsort(-pop.n_events, kind="stable")
    active = len(order) - np.cumsum(np.bincount(pop.n_events))  # users with > t events
    items = np.full(len(times), -1, dtype=np.int64)
    last = np.full(len(order), -1, dtype=np.int64)
    for t in range(int(pop.n_events.max())):
        users = order[: active[t]]
        ev = off[users] + t
        chosen = _step(w, users, times[ev], brk[ev], last[users], rng)
        items[ev], last[users] = chosen, chosen
        w.seen.add(users, chosen)
    user = np.repeat(np.arange(len(order)), pop.n_events)
    return user, items, times


def feedback(
    cat: Catalogue, pop: Population, user: IntArray, item: IntArray, rng: np.random.Generator
) -> tuple[BoolArray, BoolArray]:
    """Likes follow interest strength and quality; purchases (of liked items) interest and price."""
    same = pop.interests[user] == cat.category[item][:, None]
    match = (same * pop.interest_weight[user]).sum(1)  # weight of the item's category, 0..1
    quality = cat.quality[item] - cat.quality.mean()
    like = rng.random(len(user)) < _sigmoid(-1.6 + 2.5 * match + 5.0 * quality)
    buy = rng.random(len(user)) < _sigmoid(-1.2 + 3.0 * match - 0.5 * cat.price[item])
    return like, like & buy


def impressions(
    cat: Catalogue, item: IntArray, time: F64, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Non-clicked exposures as ``(host click row, item)``: each sits in the slate of a click.

    An item clicked ``c`` times was shown ``c + NegBin(c, quality)`` times, so its empirical
    CTR estimates its quality and popular items collect most non-clicked exposures. Each
    exposure joins the slate of a random click of the same category after the item's creation.
    """
    clicks = np.bincount(item, minlength=cat.n_items)
    shown = np.repeat(
        np.arange(cat.n_items),
        rng.negative_binomial(np.maximum(clicks, 1), cat.quality) * (clicks > 0),
    )
    stride = int(time.max()) + 2
    ev_keys = cat.category[item] * stride + time.astype(np.int64)
    ev_order = np.argsort(ev_keys, kind="stable")
    ev_keys = ev_keys[ev_order]
    base = cat.category[shown] * stride
    lo = np.searchsorted(ev_keys, base + np.maximum(cat.created[shown], 0).astype(np.int64))
    hi = np.searchsorted(ev_keys, base + stride)
    pos = lo + np.floor(rng.random(len(shown)) * (hi - lo)).astype(np.int64)
    host = ev_order[np.minimum(pos, len(ev_order) - 1)]
    keep = (hi > lo) & (item[host] != shown)
    return host[keep], shown[keep]


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))
