"""Batched, incremental extraction of content vectors with a progress bar.

``extract(inputs, encoder, cache)`` hashes every input, serves the ones already in the
``VectorCache``, encodes only the new or changed ones (each distinct content once, in
batches), stores them, and reports throughput. ``item_texts`` builds the text of each item
from item-table columns.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from funnelrec.content.cache import VectorCache, content_key
from funnelrec.content.registry import ContentEncoder, F32Matrix
from funnelrec.errors import ConfigError


@dataclass(frozen=True)
class ExtractReport:
    """What one ``extract`` call did.

    Attributes:
        n_items: inputs given. encoded: inputs sent to the encoder (distinct contents not in
        the cache). cached: inputs served from the cache. seconds: wall time of the call.
        items_per_s: ``n_items / seconds``.
    """

    n_items: int
    encoded: int
    cached: int
    seconds: float
    items_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract(
    inputs: Sequence[Any],
    encoder: ContentEncoder,
    cache: VectorCache | None = None,
    batch_size: int = 256,
    progress: bool | None = None,
) -> tuple[F32Matrix, ExtractReport]:
    """``[n, dim]`` vectors of ``inputs`` (see module doc) and an ``ExtractReport``.

    Args:
        inputs: item contents (texts, image paths/PIL images), one per item.
        encoder: the ``ContentEncoder``; ``cache``: its ``VectorCache`` (``None``: no cache,
            but identical contents are still encoded once).
        batch_size: inputs per encoder call. progress: show a tqdm bar (``None``: when
            stderr is a terminal).
    """
    if cache is not None and (cache.fingerprint, cache.dim) != (encoder.fingerprint, encoder.dim):
        raise ConfigError(f"cache of {cache.fingerprint!r} used with {encoder.fingerprint!r}")
    start = time.perf_counter()
    keys = [content_key(encoder.content_bytes(x)) for x in inputs]
    rows = cache.lookup(keys) if cache is not None else np.full(len(keys), -1, dtype=np.int64)
    out = np.zeros((len(keys), encoder.dim), dtype=np.float32)
    hit = rows >= 0
    if cache is not None and hit.any():
        out[hit] = cache.vectors(rows[hit])
    first: dict[bytes, int] = {}  # distinct missing contents → first position
    for i in np.flatnonzero(~hit):
        first.setdefault(keys[i], int(i))
    todo = list(first.values())
    show = _interactive() if progress is None else progress
    with tqdm(total=len(todo), unit="item", desc="encode", disable=not show) as bar:
        for lo in range(0, len(todo), batch_size):
            chunk = todo[lo : lo + batch_size]
            vectors = _checked(encoder, [inputs[i] for i in chunk])
            out[chunk] = vectors
            if cache is not None:
                cache.add([keys[i] for i in chunk], vectors)
            bar.update(len(chunk))
    missing = np.flatnonzero(~hit)
    if len(missing):  # repeated contents reuse the vector of their first occurrence
        out[missing] = out[[first[keys[i]] for i in missing]]
    seconds = time.perf_counter() - start
    report = ExtractReport(
        len(keys), len(todo), int(hit.sum()), seconds, len(keys) / max(seconds, 1e-9)
    )
    return out, report


def _checked(encoder: ContentEncoder, batch: list[Any]) -> F32Matrix:
    vectors = np.asarray(encoder.encode(batch), dtype=np.float32)
    if vectors.shape != (len(batch), encoder.dim):
        raise ValueError(
            f"encoder {encoder.fingerprint!r} returned {vectors.shape} for "
            f"{len(batch)} inputs, expected ({len(batch)}, {encoder.dim})"
        )
    return vectors


def item_texts(items: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """One text per item row: the non-null values of ``columns`` joined by ``". "``
    (list columns such as ``tags`` joined by ``", "``); an item with none gets ``""``."""
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise ConfigError(f"text columns {missing} not in the item table {items.columns}")
    parts = []
    for name in columns:
        col = pl.col(name)
        if isinstance(items.schema[name], pl.List):
            text = col.cast(pl.List(pl.Utf8)).list.join(", ")
        else:
            text = col.cast(pl.Utf8)
        parts.append(pl.when(text.str.strip_chars() != "").then(text))
    if not parts:
        return [""] * items.height
    joined = items.select(pl.concat_str(parts, separator=". ", ignore_nulls=True).alias("t"))
    return [t or "" for t in joined["t"].to_list()]


def _interactive() -> bool:
    """Progress bars by default only on a terminal, never under ``FUNNELREC_QUIET=1``
    (``funnelrec ... --quiet`` sets it)."""
    return sys.stderr.isatty() and os.environ.get("FUNNELREC_QUIET") != "1"
