"""MovieLens loaders: ml-100k (``u.data``/``u.item``/``u.user``) and ml-1m (``*.dat``).

Interactions keep file order (the dataset sorts stably by time later, ties keep file order).
Ids stay integers as in the files. Item table: ``title``, ``category`` (first genre), ``tags``
(all genres), ``year``; user table: ``age``, ``gender``, ``occupation``, ``zip``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders._text import (
    LINE,
    cast_fields,
    check_unique,
    read_lines,
    split_fields,
)

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_RATING_FIELDS = ["user_id", "item_id", "rating", "timestamp"]
_RATING_TYPES = {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float64}
_USER_TYPES = {"user_id": pl.Int64, "age": pl.Int64}
_LATIN1 = "latin-1"


def load_movielens_100k(folder: str | Path) -> Dataset:
    """Load MovieLens 100K from a folder with ``u.data`` (and optional ``u.item``, ``u.user``).

    Args:
        folder: the ``ml-100k`` folder.

    Returns:
        A ``Dataset`` named ``"ml-100k"`` with feedback column ``rating``.

    Raises:
        DataError: a file is missing or malformed (message names file, line and column).
    """
    root = Path(folder)
    ratings = _read_ratings(root / "u.data", "\t")
    item_path, user_path = root / "u.item", root / "u.user"
    items = None
    if item_path.is_file():
        items = _read_items_100k(item_path, _read_genres(root / "u.genre"))
    users = None
    if user_path.is_file():
        users = _read_users(user_path, "|", ["user_id", "age", "gender", "occupation", "zip"])
    return _build(ratings, items, users, "ml-100k", root, item_path)


def load_movielens_1m(folder: str | Path) -> Dataset:
    """Load MovieLens 1M from ``ratings.dat`` (and optional ``movies.dat``, ``users.dat``).

    Args:
        folder: the ``ml-1m`` folder.

    Returns:
        A ``Dataset`` named ``"ml-1m"`` with feedback column ``rating``. ``age`` is the 1M age
        bucket and ``occupation`` the numeric code, both as in ``users.dat``.

    Raises:
        DataError: a file is missing or malformed (message names file, line and column).
    """
    root = Path(folder)
    ratings = _read_ratings(root / "ratings.dat", "::")
    item_path, user_path = root / "movies.dat", root / "users.dat"
    items = _read_movies_1m(item_path) if item_path.is_file() else None
    users = None
    if user_path.is_file():
        users = _read_users(user_path, "::", ["user_id", "gender", "age", "occupation", "zip"])
    return _build(ratings, items, users, "ml-1m", root, item_path)


def _build(
    ratings: pl.DataFrame,
    items: pl.DataFrame | None,
    users: pl.DataFrame | None,
    name: str,
    root: Path,
    item_path: Path,
) -> Dataset:
    """Assemble the dataset from validated frames (``_line`` columns dropped here); without
    an item table, ``meta["missing_item_file"]`` names the item file stages would need."""
    dataset = Dataset.from_frame(
        ratings.drop(LINE),
        feedback_cols=("rating",),
        items=None if items is None else items.drop(LINE),
        users=None if users is None else users.drop(LINE),
        name=name,
    )
    meta = {"format": name, "source": str(root)}
    if items is None:
        meta["missing_item_file"] = str(item_path)
    return dataset.replace(meta=meta)


def _read_ratings(path: Path, sep: str) -> pl.DataFrame:
    """``user_id, item_id, rating, timestamp`` in file order; timestamps must be integers."""
    frame = split_fields(read_lines(path), path, sep, _RATING_FIELDS)
    frame = cast_fields(frame, path, {**_RATING_TYPES, "timestamp": pl.Int64})
    return frame.with_columns(pl.col("timestamp").cast(pl.Float64))


def _read_genres(path: Path) -> list[str]:
    """Genre names ordered by their index in ``u.genre``; the standard 19 if the file is absent."""
    if not path.is_file():
        return list(ML100K_GENRES)
    frame = split_fields(read_lines(path, _LATIN1), path, "|", ["genre", "index"])
    frame = cast_fields(frame, path, {"index": pl.Int64})
    return [str(g) for g in frame.sort("index")["genre"].to_list()]


def _read_items_100k(path: Path, genres: list[str]) -> pl.DataFrame:
    """``u.item``: id|title|release date|video date|url|one 0/1 flag per genre."""
    flags = [f"_g{i}" for i in range(len(genres))]
    names = ["item_id", "title", "release_date", "video_date", "url", *flags]
    frame = split_fields(read_lines(path, _LATIN1), path, "|", names)
    frame = cast_fields(frame, path, {"item_id": pl.Int64, **dict.fromkeys(flags, pl.Int8)})
    check_unique(frame, path, "item_id")
    tags = pl.concat_list(
        [pl.when(pl.col(f) != 0).then(pl.lit(g)) for f, g in zip(flags, genres, strict=True)]
    ).list.drop_nulls()
    return frame.select(
        LINE,
        "item_id",
        "title",
        tags.list.first().alias("category"),
        tags.alias("tags"),
        _year(pl.col("release_date"), r"(\d{4})\s*$"),
    )


def _read_movies_1m(path: Path) -> pl.DataFrame:
    """``movies.dat``: MovieID::Title (Year)::Genre|Genre."""
    frame = split_fields(read_lines(path, _LATIN1), path, "::", ["item_id", "title", "genres"])
    frame = cast_fields(frame, path, {"item_id": pl.Int64})
    check_unique(frame, path, "item_id")
    tags = pl.col("genres").str.extract_all(r"[^|]+")
    return frame.select(
        LINE,
        "item_id",
        "title",
        tags.list.first().alias("category"),
        tags.alias("tags"),
        _year(pl.col("title"), r"\((\d{4})\)\s*$"),
    )


def _read_users(path: Path, sep: str, names: list[str]) -> pl.DataFrame:
    """User table with integer ``user_id`` and ``age``; other fields stay strings."""
    frame = split_fields(read_lines(path, _LATIN1), path, sep, names)
    frame = cast_fields(frame, path, _USER_TYPES)
    check_unique(frame, path, "user_id")
    return frame.select(LINE, "user_id", "age", "gender", "occupation", "zip")


def _year(text: pl.Expr, pattern: str) -> pl.Expr:
    """Four-digit year captured by ``pattern`` (null when absent)."""
    return text.str.extract(pattern, 1).cast(pl.Int32, strict=False).alias("year")
