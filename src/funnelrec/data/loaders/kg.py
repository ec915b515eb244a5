"""Knowledge-graph datasets: the KGCN format (Last.fm) and KG files for other loaders.

KGCN format (``hwwang55/KGCN:data/music``), all tab separated:
``user_artists.dat`` (header ``userID artistID weight``; implicit feedback, no timestamps),
``item_index2entity_id.txt`` (``artistID entity``), ``kg.txt`` (``head relation tail``), and
optionally ``hetrec2011-lastfm-2k/artists.dat`` (``id name url pictureURL``: item titles).
RecBole ``.kg``/``.link`` files are read by ``loaders.recbole``; ``attach_recbole_kg`` adds
them to a dataset loaded another way (e.g. ml-100k from ``u.data``).
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
from funnelrec.data.loaders.lastfm_artists import ARTISTS_FILE, load_lastfm_artists
from funnelrec.data.loaders.recbole import read_atomic
from funnelrec.errors import DataError

KGCN_FILES = ("user_artists.dat", "item_index2entity_id.txt", "kg.txt")


def is_kgcn_folder(folder: Path) -> bool:
    """Whether ``folder`` holds the three KGCN files."""
    return all((folder / name).is_file() for name in KGCN_FILES)


def load_kgcn(folder: str | Path, *, kg_items_only: bool = False) -> Dataset:
    """Load a KGCN-format folder (e.g. ``lastfm-kg``).

    Args:
        folder: folder with ``user_artists.dat``, ``item_index2entity_id.txt``, ``kg.txt``.
        kg_items_only: keep only interactions with items linked to the KG (KGCN's own
            preprocessing: 21,173 pairs of 1,872 users on lastfm-kg).

    Returns:
        A ``Dataset`` named after the folder: feedback ``plays`` (listening count), row order
        as time (no timestamps), ``kg`` (Utf8 head/relation/tail), ``item_entities`` and,
        when ``artists.dat`` is present, item ``title``/``url``/``picture_url``.

    Raises:
        DataError: a file is missing or malformed (message names file, line and column).
    """
    root = Path(folder)
    inter = _read_table(root / "user_artists.dat", ["user_id", "item_id", "plays"], header=True)
    inter = cast_fields(
        inter, root / "user_artists.dat",
        {"user_id": pl.Int64, "item_id": pl.Int64, "plays": pl.Float64},
    )  # fmt: skip
    links = _read_table(root / "item_index2entity_id.txt", ["item_id", "entity"])
    links = cast_fields(links, root / "item_index2entity_id.txt", {"item_id": pl.Int64})
    check_unique(links, root / "item_index2entity_id.txt", "item_id")
    kg = _read_table(root / "kg.txt", ["head", "relation", "tail"]).drop(LINE)
    if kg_items_only:
        inter = inter.join(links.select("item_id"), on="item_id", how="semi")
    if inter.height == 0:
        raise DataError(f"{root / 'user_artists.dat'}: no interactions left")
    items = load_lastfm_artists(root) if (root / ARTISTS_FILE).is_file() else None
    if items is not None and kg_items_only:
        items = items.join(inter.select("item_id").unique(), on="item_id", how="semi")
    dataset = Dataset.from_frame(
        inter.drop(LINE),
        time_col=None,
        feedback_cols=("plays",),
        items=items,
        name=root.name,
    )
    idx = dataset.item_ids.lookup(links["item_id"].to_list())
    entities = pl.DataFrame({"item_idx": idx, "entity": links["entity"]})
    return dataset.replace(
        kg=kg,
        item_entities=entities.filter(pl.col("item_idx") >= 0),
        meta={"format": "kgcn", "source": str(root), "kg_items_only": kg_items_only},
    )


def attach_recbole_kg(dataset: Dataset, kg_file: str | Path, link_file: str | Path) -> Dataset:
    """``dataset`` with the triples of a RecBole ``.kg`` and the item links of a ``.link``.

    Links to items the dataset does not know are dropped (ids compared as strings).
    """
    kg = read_atomic(Path(kg_file), required=("head_id", "relation_id", "tail_id"))
    links = read_atomic(Path(link_file), required=("item_id", "entity_id"))
    lookup = {str(ext): i for i, ext in enumerate(dataset.item_ids.ids)}
    idx = [lookup.get(str(item), -1) for item in links["item_id"].to_list()]
    entities = pl.DataFrame({"item_idx": idx, "entity": links["entity_id"]}, strict=False)
    return dataset.replace(
        kg=kg.select(
            pl.col("head_id").alias("head"),
            pl.col("relation_id").alias("relation"),
            pl.col("tail_id").alias("tail"),
        ),
        item_entities=entities.with_columns(pl.col("item_idx").cast(pl.Int64)).filter(
            pl.col("item_idx") >= 0
        ),
    )


def _read_table(path: Path, names: list[str], *, header: bool = False) -> pl.DataFrame:
    """Tab-separated Utf8 columns (with ``_line``), header line skipped when ``header``."""
    lines = read_lines(path)
    if header:
        lines = lines.slice(1)
    frame = split_fields(lines, path, "\t", names)
    return frame.with_columns(pl.col(n).str.strip_chars() for n in names)
