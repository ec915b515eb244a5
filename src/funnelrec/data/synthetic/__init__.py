"""A synthetic recommendation world: the embedded default dataset of the demo and the tests.

Generative story (details in ``synthetic/world.py`` and ``synthetic/behaviour.py``):

1. **Catalogue.** Items get a category (16 named ones), a creator specialised in that category,
   sometimes a series (parts published one after another), category-correlated tags, a title
   from small word lists (series parts and re-releases are near-duplicates), a price bucket, a
   Zipf exposure prior, a click quality (true CTR) and a creation time: most items exist
   before the log starts, a share appears during it.
2. **Users.** Age bucket and region shift a prior over categories; each user draws 1-4
   interests with mixture weights, a favourite creator per interest and a power-law activity
   level (at least ``min_interactions`` events) spread over sessions in an active window.
3. **Clicks.** Step by step (all users at once), the next click follows a habit: the series'
   next part, an item related to the last one, the last item's category, a favourite creator,
   a fresh item, a popular item or one of the user's interests. Only created, unseen items.
4. **Feedback and exposures.** Likes depend on interest match and quality, purchases (a subset
   of likes) on interest match and price. Each click sits in a slate of non-clicked exposures
   biased towards popular, low-quality items, so empirical CTR tracks quality.
5. **Knowledge graph.** item -> creator / series / tag / category / original release triples.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.synthetic import vocab
from funnelrec.data.synthetic.behaviour import feedback, impressions, simulate_clicks
from funnelrec.data.synthetic.world import (
    F64,
    Catalogue,
    Population,
    WorldSpec,
    make_catalogue,
    make_population,
)
from funnelrec.errors import ConfigError
from funnelrec.ragged import BoolArray, IntArray

__all__ = ["START_TIME", "WorldSpec", "generate"]

START_TIME = 1_704_067_200.0  # 2024-01-01T00:00:00Z, the first second of the log
FEEDBACK = ("click", "like", "purchase")


def generate(
    n_users: int = 2000,
    n_items: int = 1000,
    n_interactions: int = 100_000,
    seed: int = 0,
    *,
    spec: WorldSpec | None = None,
    name: str | None = None,
) -> Dataset:
    """Generate a deterministic synthetic world (same arguments, same frames).

    Args:
        n_users: number of users; each gets at least ``spec.min_interactions`` clicks.
        n_items: catalogue size (some items are created during the log, a few never clicked).
        n_interactions: exact number of click rows.
        seed: seed of the single random generator everything is drawn from.
        spec: behaviour knobs; ``WorldSpec()`` by default.
        name: dataset name; ``synthetic-<size>`` (e.g. ``synthetic-100k``) by default.

    Returns:
        A ``Dataset`` with ``feedback=("click", "like", "purchase")``, ``items``, ``users``,
        ``impressions``, ``kg`` and ``item_entities``; ``meta`` (JSON-ready) holds the seed, the
        spec, the true CTR per item (``true_ctr``) and ``near_duplicates`` ([copy, original]).
    """
    spec = spec or WorldSpec()
    if n_users < 1 or n_items < 1:
        raise ConfigError(f"need at least one user and one item, got {n_users} and {n_items}")
    rng = np.random.default_rng(seed)
    cat = make_catalogue(n_items, spec, rng)
    pop = make_population(n_users, n_interactions, cat, spec, rng)
    user, item, time = simulate_clicks(cat, pop, spec, rng)
    like, purchase = feedback(cat, pop, user, item, rng)
    host, shown = impressions(cat, item, time, rng)
    user_ids, item_ids = _ids("u", n_users), _ids("i", n_items)
    ds = Dataset.from_frame(
        _log_frame(user_ids.gather(user), item_ids.gather(item), time, like, purchase),
        feedback_cols=FEEDBACK,
        items=_item_table(cat, item_ids),
        users=_user_table(pop, user_ids),
        name=name or f"synthetic-{_size_name(n_interactions)}",
    )
    dup = np.flatnonzero(cat.duplicate_of >= 0)
    return ds.replace(
        impressions=_impression_table(user, item, time, host, shown),
        kg=_kg_table(cat, item_ids),
        item_entities=pl.DataFrame(
            {"item_idx": np.arange(n_items, dtype=np.int64), "entity": "item:" + item_ids}
        ),
        meta={
            "seed": seed,
            "spec": dataclasses.asdict(spec),
            "true_ctr": np.round(cat.quality, 5).tolist(),
            "near_duplicates": np.stack([dup, cat.duplicate_of[dup]], axis=1).tolist(),
        },
    )


def _log_frame(
    user_id: pl.Series, item_id: pl.Series, time: F64, like: BoolArray, purchase: BoolArray
) -> pl.DataFrame:
    """The click log in time order (stable: a user's events with equal seconds keep order)."""
    return pl.DataFrame(
        {
            "user_id": user_id,
            "item_id": item_id,
            "timestamp": START_TIME + time,
            "click": np.ones(len(time), dtype=np.float32),
            "like": like.astype(np.float32),
            "purchase": purchase.astype(np.float32),
        }
    ).sort("timestamp", "user_id", maintain_order=True)


def _ids(prefix: str, n: int) -> pl.Series:
    """External ids ``<prefix>0000``... zero-padded to a common width (at least four digits)."""
    width = max(4, len(str(n - 1)))
    return prefix + _digits(np.arange(n), width)


def _digits(values: IntArray, width: int) -> pl.Series:
    return pl.Series(values).cast(pl.Utf8).str.zfill(width)


def _size_name(n: int) -> str:
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def _pick(words: tuple[str, ...], idx: IntArray) -> pl.Series:
    return pl.Series(words, dtype=pl.Utf8).gather(idx)


def _titles(cat: Catalogue) -> pl.Series:
    """``<Adjective> <Noun> <Word> #n``; series parts ``...: Part k``; re-releases copy + suffix."""
    words = [w for _, (_, ws) in vocab.CATEGORIES.items() for w in ws]
    tw = cat.title_words
    base = _pick(vocab.ADJECTIVES, tw[:, 0]) + " " + _pick(vocab.NOUNS, tw[:, 1])
    base = base + " " + _pick(tuple(words), tw[:, 2])
    idx = pl.Series(np.arange(cat.n_items)).cast(pl.Utf8)
    part = pl.Series(cat.part + 1).cast(pl.Utf8)
    title = pl.select(
        pl.when(pl.lit(pl.Series(cat.series >= 0)))
        .then(base + ": Part " + part)
        .otherwise(base + " #" + idx)
    ).to_series()
    orig = np.maximum(cat.duplicate_of, 0)
    suffix = _pick(vocab.DUPLICATE_SUFFIXES, orig % len(vocab.DUPLICATE_SUFFIXES))
    copy = title.gather(orig) + suffix
    return pl.select(
        pl.when(pl.lit(pl.Series(cat.duplicate_of >= 0))).then(copy).otherwise(title)
    ).to_series()


def _tag_names() -> list[str]:
    return [t for tags, _ in vocab.CATEGORIES.values() for t in tags] + list(vocab.GLOBAL_TAGS)


def _tag_lists(cat: Catalogue) -> pl.Series:
    names = pl.Series(_tag_names(), dtype=pl.Utf8)
    cols = [
        pl.select(pl.when(pl.lit(pl.Series(col >= 0))).then(names.gather(np.maximum(col, 0))))
        .to_series()
        .alias(f"t{j}")
        for j, col in enumerate(cat.tag_matrix.T)
    ]
    return pl.DataFrame(cols).select(pl.concat_list(pl.all()).list.drop_nulls()).to_series()


def _item_table(cat: Catalogue, item_ids: pl.Series) -> pl.DataFrame:
    names = tuple(vocab.CATEGORIES)
    creator, series = _entity_names(cat)
    return pl.DataFrame(
        {
            "item_id": item_ids,
            "category": _pick(names, cat.category),
            "tags": _tag_lists(cat),
            "title": _titles(cat),
            "created_at": START_TIME + cat.created,
            "price_bucket": _pick(vocab.PRICE_BUCKETS, cat.price),
            "creator": creator,
            "series": series,
        }
    )


def _user_table(pop: Population, user_ids: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": user_ids,
            "age_bucket": _pick(vocab.AGE_BUCKETS, pop.age),
            "region": _pick(vocab.REGIONS, pop.region),
        }
    )


def _entity_names(cat: Catalogue) -> tuple[pl.Series, pl.Series]:
    """Creator id (``c0012``) and series id (``s0003``, null outside a series) per item."""
    creator = "c" + _digits(cat.creator, 4)
    series = "s" + _digits(np.maximum(cat.series, 0), 4)
    return creator, pl.select(pl.when(pl.lit(pl.Series(cat.series >= 0))).then(series)).to_series()


def _kg_table(cat: Catalogue, item_ids: pl.Series) -> pl.DataFrame:
    """item -> creator / series / tag / category / original, and creator -> category triples."""
    item_ent = "item:" + item_ids
    creator, series = _entity_names(cat)
    category = "category:" + _pick(tuple(vocab.CATEGORIES), cat.category)
    present = cat.tag_matrix >= 0
    tag_items = np.nonzero(present)[0]
    tags = "tag:" + _pick(tuple(_tag_names()), cat.tag_matrix[present])
    dup = np.flatnonzero(cat.duplicate_of >= 0)
    creators = pl.DataFrame({"head": "creator:" + creator, "tail": category}).unique(
        maintain_order=True
    )
    parts = [
        ("has_creator", item_ent, "creator:" + creator),
        ("in_series", item_ent.filter(cat.series >= 0), "series:" + series.drop_nulls()),
        ("has_tag", item_ent.gather(tag_items), tags),
        ("in_category", item_ent, category),
        ("edition_of", item_ent.gather(dup), item_ent.gather(cat.duplicate_of[dup])),
        ("works_in", creators["head"], creators["tail"]),
    ]
    return pl.concat(
        [
            pl.DataFrame({"head": head, "relation": rel, "tail": tail}).with_columns(
                pl.col("relation").cast(pl.Utf8)
            )
            for rel, head, tail in parts
        ]
    ).select("head", "relation", "tail")


def _impression_table(
    user: IntArray, item: IntArray, time: F64, parent: IntArray, shown: IntArray
) -> pl.DataFrame:
    """Clicks plus their slates' non-clicked exposures, in time order (one row per exposure)."""
    frame = pl.DataFrame(
        {
            "user_idx": np.concatenate([user, user[parent]]),
            "item_idx": np.concatenate([item, shown]),
            "timestamp": START_TIME + np.concatenate([time, time[parent]]),
            "clicked": np.concatenate([np.ones(len(item)), np.zeros(len(shown))]).astype(np.int8),
        }
    )
    keys = ["user_idx", "item_idx", "timestamp"]
    return frame.unique(subset=keys, keep="first", maintain_order=True).sort(
        "timestamp", "user_idx", maintain_order=True
    )
