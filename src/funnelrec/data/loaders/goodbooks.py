"""goodbooks-10k item metadata (``books.csv``): a catalogue with text and no interactions.

Item table: ``title``, ``original_title``, ``authors`` (List[Utf8], split on ``", "``),
``year``, ``language``, ``average_rating``, ``ratings_count``, ``image_url``. The ratings file
is not part of the metadata folder, so the dataset has no users and no interactions: it is
meant for content encoders (text, cover URLs) and cold-start catalogues.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders._text import data_error, require_file

BOOK_COLUMNS = {
    "book_id": "item_id",
    "title": "title",
    "original_title": "original_title",
    "authors": "authors",
    "original_publication_year": "year",
    "language_code": "language",
    "average_rating": "average_rating",
    "ratings_count": "ratings_count",
    "image_url": "image_url",
}


def read_books(path: str | Path) -> pl.DataFrame:
    """``books.csv`` as an item frame keyed by ``item_id`` (= ``book_id``), see module doc.

    Raises:
        DataError: missing file or column, or a repeated/empty ``book_id``.
    """
    path = require_file(Path(path))
    try:
        raw = pl.read_csv(path, infer_schema_length=0)  # all Utf8: types are cast below
    except pl.exceptions.PolarsError as exc:
        raise data_error(path, f"cannot parse CSV: {exc}") from None
    missing = [c for c in BOOK_COLUMNS if c not in raw.columns]
    if missing:
        raise data_error(path, f"missing column(s) {missing}; columns are {raw.columns}")
    books = raw.select(pl.col(src).alias(dst) for src, dst in BOOK_COLUMNS.items())
    ids = books["item_id"].cast(pl.Int64, strict=False)
    if ids.is_null().any():
        line = int(ids.is_null().arg_true()[0]) + 2  # header is line 1
        raise data_error(path, f"bad book_id {books['item_id'][line - 2]!r}", line=line)
    if ids.is_duplicated().any():
        line = int(ids.is_duplicated().arg_true()[1]) + 2
        raise data_error(path, f"duplicate book_id {ids[line - 2]}", line=line)
    return books.with_columns(
        ids.alias("item_id"),
        pl.col("authors").str.split(", "),
        pl.col("year").cast(pl.Float64, strict=False).cast(pl.Int64, strict=False),
        pl.col("average_rating").cast(pl.Float64, strict=False),
        pl.col("ratings_count").cast(pl.Int64, strict=False),
    )


def load_goodbooks(folder: str | Path) -> Dataset:
    """The goodbooks-10k catalogue (``<folder>/books.csv``) as a ``Dataset`` without
    interactions, named ``goodbooks-10k-meta``."""
    books = read_books(Path(folder) / "books.csv")
    empty = pl.DataFrame(
        {"user_id": [], "item_id": [], "timestamp": []},
        schema={"user_id": pl.Int64, "item_id": pl.Int64, "timestamp": pl.Float64},
    )
    dataset = Dataset.from_frame(empty, items=books, name="goodbooks-10k-meta")
    return dataset.replace(meta={"format": "goodbooks", "source": str(folder)})
