"""Loaders of public dataset formats, and ``load_dataset(spec)`` which picks one.

Every loader returns a ``funnelrec.data.Dataset``; malformed input raises ``DataError`` naming
the file, the line and the column where known.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders.goodbooks import load_goodbooks
from funnelrec.data.loaders.lastfm_artists import attach_items, load_lastfm_artists
from funnelrec.data.loaders.movielens import load_movielens_1m, load_movielens_100k
from funnelrec.data.loaders.multitask import ali_ccp_dataset, is_multitask_path
from funnelrec.data.loaders.recbole import infer_name, load_recbole_atomic
from funnelrec.data.loaders.sequences import load_sequences
from funnelrec.data.loaders.tabular import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    ColumnMapping,
    load_table,
)
from funnelrec.errors import DataError

__all__ = [
    "ColumnMapping",
    "attach_items",
    "load_dataset",
    "load_goodbooks",
    "load_lastfm_artists",
    "load_movielens_1m",
    "load_movielens_100k",
    "load_recbole_atomic",
    "load_sequences",
    "load_table",
]

ATTRIBUTES_SUFFIX = "_item2attributes.json"
_TABLE_SUFFIXES = (*CSV_SUFFIXES, *PARQUET_SUFFIXES)


def load_dataset(
    spec: str | Path, *, mapping: ColumnMapping | None = None, **options: Any
) -> Dataset:
    """Load a dataset from a spec string.

    Specs:
        ``synthetic`` or ``synthetic:key=value,...`` -> ``funnelrec.data.synthetic.generate``
        (``options`` and the parsed pairs are its keyword arguments);
        a folder with ``u.data`` (ml-100k), ``ratings.dat`` (ml-1m), one ``*.inter`` (RecBole),
        Ali-CCP ``*ali_ccp*.csv`` files (impressions with click/purchase),
        ``books.csv`` (goodbooks-10k metadata, no interactions)
        or a sequence ``*.txt`` (with ``<stem>_item2attributes.json`` if present);
        a file: ``*.inter``, sequence ``*.txt``, ``u.data``, ``ratings.dat``, or a
        CSV/TSV/Parquet table, which needs ``mapping`` (``options`` go to ``load_table``).

    Raises:
        DataError: the path does not exist or its format is not recognised.
    """
    text = str(spec)
    if text == "synthetic" or text.startswith("synthetic:"):
        return _synthetic(text, options)
    path = Path(text).expanduser()
    if path.suffix.lower() in _TABLE_SUFFIXES:
        if mapping is None:
            raise DataError(
                f"{path}: tables need a column mapping; call load_table(path, ColumnMapping("
                "user=..., item=..., timestamp=..., feedback=(...))) or pass mapping="
            )
        return load_table(path, mapping, **options)
    if options or mapping is not None:
        raise DataError(
            f"{path}: options {sorted(options)} apply to synthetic data and tables only"
        )
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_file(path)
    raise DataError(f"{spec}: no such file or folder (and not 'synthetic')")


def _synthetic(spec: str, options: dict[str, Any]) -> Dataset:
    """Call ``funnelrec.data.synthetic.generate`` with ``key=value`` pairs from the spec."""
    kwargs = dict(options)
    for pair in filter(None, spec.partition(":")[2].split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DataError(f"bad synthetic option {pair!r} in {spec!r} (want key=value)")
        kwargs[key.strip()] = _literal(value.strip())
    module = importlib.import_module("funnelrec.data.synthetic")
    dataset = module.generate(**kwargs)
    if not isinstance(dataset, Dataset):
        raise DataError(f"synthetic.generate returned {type(dataset).__name__}, not a Dataset")
    return dataset


def _literal(value: str) -> int | float | str:
    """``value`` as int, else float, else the string itself."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _load_folder(folder: Path) -> Dataset:
    """Detect the format of a dataset folder."""
    if (folder / "u.data").is_file():
        return load_movielens_100k(folder)
    if (folder / "ratings.dat").is_file():
        return load_movielens_1m(folder)
    if any(folder.glob("*.inter")):
        return load_recbole_atomic(folder, infer_name(folder))
    if any(folder.glob("*ali_ccp*.csv")):
        return ali_ccp_dataset(folder)
    if is_multitask_path(folder):
        raise DataError(
            f"{folder}: a multi-label table without users/items; read it with "
            "funnelrec.data.loaders.multitask.load_multitask"
        )
    if (folder / "books.csv").is_file():  # goodbooks-10k metadata: catalogue only
        return load_goodbooks(folder)
    texts = sorted(folder.glob("*.txt"))
    with_attrs = [p for p in texts if _attributes_of(p) is not None]
    candidates = with_attrs or texts
    if len(candidates) == 1:
        return load_sequences(candidates[0], _attributes_of(candidates[0]), name=folder.name)
    if candidates:
        names = [p.name for p in candidates]
        raise DataError(f"{folder}: cannot tell which of {names} is a sequence file; pass its path")
    raise DataError(
        f"{folder}: unknown dataset folder (looked for u.data, ratings.dat, *.inter, *.txt; "
        f"CSV/Parquet tables need load_table with a ColumnMapping)"
    )


def _load_file(path: Path) -> Dataset:
    """Detect the format of a single file."""
    if path.name == "u.data":
        return load_movielens_100k(path.parent)
    if path.name == "ratings.dat":
        return load_movielens_1m(path.parent)
    if path.suffix == ".inter":
        return load_recbole_atomic(path.parent, path.stem)
    if path.suffix == ".txt":
        return load_sequences(path, _attributes_of(path))
    raise DataError(f"{path}: unknown file format (expected .inter, .txt, .csv, .tsv, .parquet)")


def _attributes_of(sequence_file: Path) -> Path | None:
    """``<stem>_item2attributes.json`` beside a sequence file, if present."""
    candidate = sequence_file.with_name(sequence_file.stem + ATTRIBUTES_SUFFIX)
    return candidate if candidate.is_file() else None
