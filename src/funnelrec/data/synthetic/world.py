"""Latent world of the synthetic generator: knobs, item catalogue and user population.

Items belong to a category, have a creator, maybe a series (parts published in order) and a
creation time; their exposure prior is Zipf-distributed and their click quality (true CTR)
varies. Users carry attributes (age bucket, region) that shift which categories they are
interested in, a few weighted interests, a favourite creator per interest and an activity level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from funnelrec.data.synthetic import vocab
from funnelrec.errors import ConfigError
from funnelrec.ragged import IntArray

F64 = npt.NDArray[np.float64]
_A = TypeVar("_A", IntArray, F64)
DAY = 86_400.0
N_RELATED = 3


@dataclass(frozen=True)
class WorldSpec:
    """Knobs of the synthetic world (sizes are arguments of ``generate``)."""

    span_days: float = 180.0
    n_categories: int = 16
    zipf_exponent: float = 1.2
    activity_exponent: float = 1.2
    min_interactions: int = 5
    max_interests: int = 4
    new_item_share: float = 0.25
    series_share: float = 0.15
    duplicate_share: float = 0.01
    p_series: float = 0.12
    p_related: float = 0.15
    p_stay: float = 0.45
    p_stay_new_session: float = 0.15
    p_creator: float = 0.05
    p_fresh: float = 0.05
    p_explore: float = 0.05
    session_break: float = 0.2
    mean_gap_s: float = 240.0
    fresh_days: float = 14.0
    quality_beta: tuple[float, float] = (3.0, 9.0)

    def __post_init__(self) -> None:
        if not 2 <= self.n_categories <= len(vocab.CATEGORIES):
            raise ConfigError(f"n_categories must be in [2, 16], got {self.n_categories}")
        modes = (self.p_series, self.p_related, self.p_creator, self.p_fresh, self.p_explore)
        for stay in (self.p_stay, self.p_stay_new_session):
            if min(*modes, stay) < 0 or sum(modes) + stay > 1:
                raise ConfigError(f"mode probabilities must be >= 0 and sum to <= 1: {self}")
        if self.min_interactions < 2 or self.max_interests < 1:
            raise ConfigError("min_interactions must be >= 2 and max_interests >= 1")


class PrefixSampler:
    """Weighted draws of an item from a group, among items created inside a time window.

    Items are sorted by (group, creation rank), so the items of a group created up to ``t``
    form a prefix of its segment and one cumulative-weight array serves every (group, t).
    """

    def __init__(self, group: IntArray, created: F64, weight: F64) -> None:
        n = len(group)
        self._sorted_created = np.sort(created, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(created, kind="stable")] = np.arange(n)
        self._stride = n + 1
        keys = group * self._stride + rank
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]
        self._cum = np.concatenate([[0.0], np.cumsum(weight[self._order])])

    def _position(self, group: IntArray, t: F64) -> IntArray:
        count = np.searchsorted(self._sorted_created, t, side="right")
        return np.searchsorted(self._keys, group * self._stride + count, side="left")

    def draw(
        self, group: IntArray, t_hi: F64, rng: np.random.Generator, t_lo: F64 | None = None
    ) -> IntArray:
        """One item per row: group ``group`` created in ``(t_lo, t_hi]``; ``-1`` if none."""
        lo = self._position(group, np.full(len(group), -np.inf) if t_lo is None else t_lo)
        hi = self._position(group, t_hi)
        c_lo, c_hi = self._cum[lo], self._cum[hi]
        pos = np.searchsorted(self._cum, c_lo + rng.random(len(group)) * (c_hi - c_lo), "right") - 1
        pos = np.clip(pos, lo, np.maximum(hi - 1, lo))
        ok = (hi > lo) & (c_hi > c_lo)
        return np.where(ok, self._order[np.minimum(pos, len(self._order) - 1)], -1)


@dataclass
class Catalogue:
    """Item-level latent state; arrays of length ``n_items`` (index-valued ones use -1 = none)."""

    category: IntArray
    creator: IntArray
    series: IntArray
    part: IntArray
    successor: IntArray
    related: IntArray  # [n_items, N_RELATED]
    duplicate_of: IntArray
    created: F64  # seconds relative to the start of the log
    exposure: F64
    quality: F64
    price: IntArray
    tag_matrix: IntArray  # [n_items, 4] global tag ids, -1 = absent
    title_words: IntArray  # [n_items, 3]: adjective, noun, category word
    creator_category: IntArray
    creator_weight: F64

    @property
    def n_items(self) -> int:
        return len(self.category)

    def take(self, perm: IntArray) -> Catalogue:
        """Items reordered by ``perm``; item-valued arrays are remapped."""
        inv = np.empty(len(perm), dtype=np.int64)
        inv[perm] = np.arange(len(perm))

        def remap(a: IntArray) -> IntArray:
            return np.where(a >= 0, inv[np.maximum(a, 0)], -1)

        fields = {k: v[perm] for k, v in vars(self).items() if not k.startswith("creator_")}
        for name in ("successor", "related", "duplicate_of"):
            fields[name] = remap(fields[name])
        return Catalogue(
            **fields, creator_category=self.creator_category, creator_weight=self.creator_weight
        )


def _series_layout(
    n_base: int, share: float, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Series id and part number of the first items (series of 3-6 parts); -1 elsewhere."""
    lengths = rng.integers(3, 7, size=max(1, int(share * n_base) // 3 + 1))
    keep = np.cumsum(lengths) <= int(share * n_base)
    lengths = lengths[keep]
    series = np.full(n_base, -1, dtype=np.int64)
    part = np.zeros(n_base, dtype=np.int64)
    n_ser = int(lengths.sum())
    series[:n_ser] = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    part[:n_ser] = np.arange(n_ser) - starts
    return series, part


def _per_series(values: _A, series: IntArray) -> _A:
    """Series items take the value of their series' first part (a series is homogeneous)."""
    out = values.copy()
    in_series = series >= 0
    first = np.searchsorted(series[in_series], series[in_series], side="left")
    out[in_series] = values[in_series][first]
    return out


def _created_times(
    series: IntArray, part: IntArray, spec: WorldSpec, rng: np.random.Generator
) -> F64:
    """Old items predate the log; a share appears during it; series parts follow each other."""
    n, span = len(series), spec.span_days * DAY
    new = rng.random(n) < spec.new_item_share
    new[np.argmax(series < 0) if (series < 0).any() else 0] = False  # at least one old item
    created = np.where(new, rng.uniform(0, 0.95 * span, n), -rng.uniform(0, 365 * DAY, n))
    created = _per_series(created, series)
    gap = np.where(part > 0, rng.uniform(3 * DAY, 30 * DAY, n), 0.0)
    in_ser = series >= 0
    cum = np.cumsum(gap * in_ser)
    first_cum = _per_series(cum, series)
    created = np.where(in_ser, created + cum - first_cum, created)
    return np.floor(np.minimum(created, 0.97 * span))


def _tags(category: IntArray, rng: np.random.Generator) -> IntArray:
    """Two distinct category tags and up to two global tags per item, as ``[n, 4]`` tag ids."""
    n, per = len(category), vocab.TAGS_PER_CATEGORY
    n_cat_tags = len(vocab.CATEGORIES) * per
    n_glob = len(vocab.GLOBAL_TAGS)
    a = rng.integers(0, per, n)
    b = (a + 1 + rng.integers(0, per - 1, n)) % per
    g1 = rng.integers(0, n_glob, n)
    g2 = (g1 + 1 + rng.integers(0, n_glob - 1, n)) % n_glob
    tags = np.stack([category * per + a, category * per + b, n_cat_tags + g1, n_cat_tags + g2], 1)
    present = np.stack(
        [np.ones(n, bool), np.ones(n, bool), rng.random(n) < 0.6, rng.random(n) < 0.25], 1
    )
    return np.where(present, tags, -1).astype(np.int64)


def _title_words(category: IntArray, rng: np.random.Generator) -> IntArray:
    """Adjective, noun and category-word index per item, ``[n, 3]``."""
    n, per = len(category), vocab.WORDS_PER_CATEGORY
    adjective = rng.integers(0, len(vocab.ADJECTIVES), n)
    noun = rng.integers(0, len(vocab.NOUNS), n)
    return np.stack([adjective, noun, category * per + rng.integers(0, per, n)], axis=1)


def _creators(
    n_base: int, cat_share: F64, rng: np.random.Generator
) -> tuple[IntArray, F64, PrefixSampler]:
    """Creators specialise in one category; their popularity is heavy-tailed."""
    n_cat = len(cat_share)
    n_creators = max(n_cat, n_base // 8)
    creator_category = np.concatenate(
        [np.arange(n_cat), rng.choice(n_cat, size=n_creators - n_cat, p=cat_share)]
    )
    weight = rng.pareto(1.5, n_creators) + 1.0
    by_category = PrefixSampler(creator_category, np.zeros(n_creators), weight)
    return creator_category, weight, by_category


def _related(cat: Catalogue, rng: np.random.Generator) -> IntArray:
    """Item -> item transitions: one item of the same creator, two of the same category."""
    n, inf = cat.n_items, np.full(cat.n_items, np.inf)
    weight = cat.exposure * cat.quality
    by_creator = PrefixSampler(cat.creator, cat.created, weight).draw(cat.creator, inf, rng)
    by_cat = PrefixSampler(cat.category, cat.created, weight)
    cols = [by_creator, by_cat.draw(cat.category, inf, rng), by_cat.draw(cat.category, inf, rng)]
    related = np.stack(cols, 1)
    dup = np.flatnonzero(cat.duplicate_of >= 0)
    related[dup, 0] = cat.duplicate_of[dup]
    related[cat.duplicate_of[dup], 0] = dup
    return np.where(related == np.arange(n)[:, None], -1, related)


def _add_duplicates(
    cat: Catalogue, n_dup: int, spec: WorldSpec, rng: np.random.Generator
) -> Catalogue:
    """Append near-duplicates (re-releases) of popular items: same content, later, less exposed."""
    orig = rng.choice(cat.n_items, size=n_dup, replace=False, p=cat.exposure / cat.exposure.sum())
    span = spec.span_days * DAY
    created = np.floor(
        np.minimum(np.maximum(cat.created[orig], 0) + rng.uniform(7, 60, n_dup) * DAY, 0.97 * span)
    )
    extra = {
        "series": np.full(n_dup, -1),
        "part": np.zeros(n_dup, dtype=np.int64),
        "successor": np.full(n_dup, -1),
        "duplicate_of": orig,
        "created": created,
        "exposure": cat.exposure[orig] * 0.3,
    }
    fields = {}
    for name, arr in vars(cat).items():
        if name.startswith("creator_"):
            continue
        fields[name] = np.concatenate([arr, extra.get(name, arr[orig])])
    return Catalogue(
        **fields, creator_category=cat.creator_category, creator_weight=cat.creator_weight
    )


def make_catalogue(n_items: int, spec: WorldSpec, rng: np.random.Generator) -> Catalogue:
    """Items: category, creator, series, tags, title words, Zipf exposure, quality, price."""
    n_cat = spec.n_categories
    n_dup = int(spec.duplicate_share * n_items) if n_items >= 50 else 0
    n_base = n_items - n_dup
    cat_share = rng.dirichlet(np.full(n_cat, 4.0))
    series, part = _series_layout(n_base, spec.series_share, rng)
    category = _per_series(rng.choice(n_cat, size=n_base, p=cat_share), series)
    creator_category, creator_weight, by_cat = _creators(n_base, cat_share, rng)
    creator = _per_series(by_cat.draw(category, np.zeros(n_base), rng), series)
    rank = rng.permutation(n_base)
    exposure = (rank + 1.0) ** -spec.zipf_exponent * 0.85**part
    price_level = rng.normal(rng.uniform(0, 3, n_cat)[category], 0.8)
    cat = Catalogue(
        category=category,
        creator=creator,
        series=series,
        part=part,
        successor=np.where(
            (series >= 0) & (np.append(series[1:], -2) == series), np.arange(n_base) + 1, -1
        ),
        related=np.full((n_base, N_RELATED), -1),
        duplicate_of=np.full(n_base, -1),
        created=_created_times(series, part, spec, rng),
        exposure=exposure,
        quality=rng.beta(*spec.quality_beta, n_base),
        price=np.clip(np.rint(price_level), 0, 3).astype(np.int64),
        tag_matrix=_per_series(_tags(category, rng), series),
        title_words=_per_series(_title_words(category, rng), series),
        creator_category=creator_category,
        creator_weight=creator_weight,
    )
    cat = _add_duplicates(cat, n_dup, spec, rng) if n_dup else cat
    cat.related = _related(cat, rng)
    return cat.take(np.argsort(cat.created, kind="stable"))


@dataclass
class Population:
    """User-level latent state: attributes, interests (``[n_users, K]``, -1 = none), activity."""

    age: IntArray
    region: IntArray
    interests: IntArray
    interest_weight: F64
    favourite_creator: IntArray
    n_events: IntArray
    window_start: F64
    window_length: F64


def _interests(
    age: IntArray, region: IntArray, cat: Catalogue, spec: WorldSpec, rng: np.random.Generator
) -> tuple[IntArray, F64]:
    """Each user gets 1..K categories, drawn from a prior shifted by age bucket and region."""
    n, n_cat, k = len(age), spec.n_categories, min(spec.max_interests, spec.n_categories)
    mass = np.bincount(cat.category, weights=cat.exposure, minlength=n_cat)
    age_pref = rng.dirichlet(np.full(n_cat, 0.4), len(vocab.AGE_BUCKETS))
    region_pref = rng.dirichlet(np.full(n_cat, 0.4), len(vocab.REGIONS))
    prior = 0.35 * age_pref[age] + 0.35 * region_pref[region] + 0.3 * mass / mass.sum()
    keys = np.log(prior) + rng.gumbel(size=(n, n_cat))
    chosen = np.argsort(-keys, axis=1)[:, :k]
    n_int = rng.integers(1, k + 1, n)
    active = np.arange(k)[None, :] < n_int[:, None]
    weight = rng.gamma(1.0, size=(n, k)) * active
    return np.where(active, chosen, -1), weight / weight.sum(1, keepdims=True)


def _activity(
    n_users: int, n_events: int, spec: WorldSpec, n_items: int, rng: np.random.Generator
) -> IntArray:
    """Power-law events per user, each at least ``min_interactions``, summing to ``n_events``."""
    low = spec.min_interactions
    cap = max(low + 1, min(n_items // 8, 20 * n_events // n_users))
    if not low * n_users <= n_events <= cap * n_users:
        raise ConfigError(
            f"n_interactions={n_events} must lie in [{low * n_users}, {cap * n_users}] "
            f"for {n_users} users and {n_items} items"
        )
    w = rng.pareto(spec.activity_exponent, n_users) + 0.01
    extra, room = n_events - low * n_users, cap - low
    lo_s, hi_s = 0.0, float(extra) / w.min() + 1.0
    for _ in range(100):  # bisection: sum(min(s * w, room)) == extra
        mid = 0.5 * (lo_s + hi_s)
        lo_s, hi_s = (mid, hi_s) if np.minimum(mid * w, room).sum() < extra else (lo_s, mid)
    x = np.minimum(lo_s * w, room)  # sums to just under extra
    base = np.floor(x).astype(np.int64)
    short = extra - int(base.sum())
    frac = np.where(base < room, x - base, -1.0)
    base[np.argsort(-frac, kind="stable")[:short]] += 1
    return base + low


def make_population(
    n_users: int, n_events: int, cat: Catalogue, spec: WorldSpec, rng: np.random.Generator
) -> Population:
    """Users: attributes, interests with mixture weights, a favourite creator per interest."""
    age = rng.choice(len(vocab.AGE_BUCKETS), size=n_users, p=vocab.AGE_SHARES)
    region = rng.choice(
        len(vocab.REGIONS),
        size=n_users,
        p=np.asarray(vocab.REGION_SHARES) / sum(vocab.REGION_SHARES),
    )
    interests, weight = _interests(age, region, cat, spec, rng)
    by_cat = PrefixSampler(
        cat.creator_category, np.zeros(len(cat.creator_weight)), cat.creator_weight
    )
    flat = interests.ravel()
    fav = by_cat.draw(np.maximum(flat, 0), np.zeros(len(flat)), rng).reshape(interests.shape)
    span = spec.span_days * DAY
    length = span * rng.uniform(0.2, 1.0, n_users)
    return Population(
        age=age,
        region=region,
        interests=interests,
        interest_weight=weight,
        favourite_creator=np.where(interests >= 0, fav, -1),
        n_events=_activity(n_users, n_events, spec, cat.n_items, rng),
        window_start=rng.uniform(0, 1, n_users) * (span - length),
        window_length=length,
    )
