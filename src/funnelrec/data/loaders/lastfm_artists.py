"""Last.fm (HetRec 2011) artist text: ``hetrec2011-lastfm-2k/artists.dat`` (id, name, url,
picture URL), and ``attach_items`` to join such a table onto a dataset's item table.

The HetRec tag names (``tags.dat``) cannot be linked to artists here: the artist↔tag file
(``user_taggedartists.dat``) is not in the shared copy, so the artist text is the name.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders._text import LINE, cast_fields, check_unique, read_lines, split_fields
from funnelrec.errors import DataError

ARTISTS_FILE = Path("hetrec2011-lastfm-2k") / "artists.dat"


def load_lastfm_artists(folder: str | Path) -> pl.DataFrame:
    """Artists of a ``lastfm-kg`` folder (or the ``artists.dat`` file itself) as
    ``item_id`` (Int64 artist id), ``title`` (name), ``url``, ``picture_url``.

    Raises:
        DataError: missing file, wrong field count or bad/duplicate id (file, line, column).
    """
    path = Path(folder)
    if path.is_dir():
        path = path / ARTISTS_FILE
    lines = read_lines(path).slice(1)  # header: id name url pictureURL
    frame = split_fields(lines, path, "\t", ["item_id", "title", "url", "picture_url"])
    frame = cast_fields(frame, path, {"item_id": pl.Int64})
    check_unique(frame, path, "item_id")
    return frame.drop(LINE)


def attach_items(dataset: Dataset, table: pl.DataFrame, key: str = "item_id") -> Dataset:
    """``dataset`` with the columns of ``table`` (keyed by external item id ``key``) joined
    onto its item table; items absent from ``table`` get nulls, columns the item table
    already has are replaced."""
    if key not in table.columns:
        raise DataError(f"item table needs a {key!r} column; it has {table.columns}")
    ids = dataset.item_ids.ids
    id_type = pl.Series(ids).dtype if ids else table[key].dtype
    try:
        table = table.with_columns(pl.col(key).cast(id_type))
    except pl.exceptions.PolarsError:
        raise DataError(f"{key} values do not match the dataset's item ids ({id_type})") from None
    keys = pl.DataFrame({key: pl.Series(ids, dtype=id_type), "item_idx": range(len(ids))})
    joined = keys.join(table.unique(key, keep="last"), on=key, how="left").sort("item_idx")
    new_cols = [c for c in table.columns if c != key]
    items = dataset.items.drop([c for c in new_cols if c in dataset.items.columns])
    return dataset.replace(items=items.with_columns(joined.select(new_cols)))
