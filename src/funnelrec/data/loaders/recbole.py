"""RecBole atomic files: ``<name>.inter`` (+ optional ``.item``, ``.user``, ``.kg``, ``.link``).

Each file is tab-separated with a header of ``field:type`` (``token``, ``token_seq``, ``float``,
``float_seq``). Tokens stay strings (ids included); sequences are space-separated lists.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders._text import (
    LINE,
    cast_fields,
    check_not_null,
    check_unique,
    data_error,
    read_lines,
    split_fields,
)
from funnelrec.errors import DataError

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
CATEGORY_FIELDS = ("class", "genre", "categories", "category")
TITLE_FIELDS = ("movie_title", "title")
_KG_FIELDS = {"head_id": "head", "relation_id": "relation", "tail_id": "tail"}


def load_recbole_atomic(folder: str | Path, name: str | None = None) -> Dataset:
    """Load a RecBole atomic dataset.

    Args:
        folder: folder holding the atomic files.
        name: file stem (``<name>.inter``); inferred when the folder has exactly one ``.inter``.

    Returns:
        A ``Dataset``: every float field of ``.inter`` other than ``timestamp`` is a feedback
        column; ``kg`` (head, relation, tail) and ``item_entities`` (item_idx, entity) are set
        when ``.kg`` / ``.link`` exist (links to unknown items are dropped).

    Raises:
        DataError: missing or malformed file, naming file, line and field.
    """
    root = Path(folder)
    stem = name or infer_name(root)
    inter_path = root / f"{stem}.inter"
    inter = read_atomic(inter_path, required=("user_id", "item_id"))
    time_col = "timestamp" if "timestamp" in inter.columns else None
    if time_col:
        check_not_null(inter, inter_path, [time_col])
    feedback = tuple(
        c for c, t in inter.schema.items() if t == pl.Float64 and c not in (time_col, LINE)
    )
    item_path, user_path = root / f"{stem}.item", root / f"{stem}.user"
    items = _item_table(item_path) if item_path.is_file() else None
    users = None
    if user_path.is_file():
        users = read_atomic(user_path, required=("user_id",))
        check_unique(users, user_path, "user_id")
    dataset = Dataset.from_frame(
        inter.select("user_id", "item_id", *([time_col] if time_col else []), *feedback),
        time_col=time_col,
        feedback_cols=feedback,
        items=None if items is None else items.drop(LINE),
        users=None if users is None else users.drop(LINE),
        name=stem,
    )
    return dataset.replace(
        kg=_kg(root / f"{stem}.kg"),
        item_entities=_links(root / f"{stem}.link", dataset),
        meta={"format": "recbole", "source": str(root)},
    )


def infer_name(folder: Path) -> str:
    """Stem of the single ``*.inter`` file in ``folder``."""
    stems = sorted(p.stem for p in folder.glob("*.inter"))
    if len(stems) != 1:
        found = f"found {stems}" if stems else "found none"
        raise DataError(f"{folder}: expected exactly one RecBole .inter file, {found}")
    return stems[0]


def read_atomic(path: Path, required: tuple[str, ...] = ()) -> pl.DataFrame:
    """Read one atomic file into typed columns named by field (plus ``_line``).

    ``token`` -> Utf8 (empty -> null), ``token_seq`` -> List[Utf8], ``float`` -> Float64,
    ``float_seq`` -> List[Float64]. Fields in ``required`` must exist and be non-empty.
    """
    lines = read_lines(path)
    if lines.height == 0:
        raise data_error(path, "empty file (no header)")
    fields = _parse_header(path, lines["text"][0], int(lines[LINE][0]))
    for field in required:
        if field not in fields:
            raise data_error(path, f"missing field {field!r}; fields are {list(fields)}", line=1)
    frame = split_fields(lines.slice(1), path, "\t", list(fields))
    floats = [f for f, t in fields.items() if t == "float"]
    frame = cast_fields(frame, path, dict.fromkeys(floats, pl.Float64), nullable=floats)
    frame = frame.with_columns(_convert(f, t) for f, t in fields.items() if t != "float")
    for field, kind in fields.items():
        if kind == "float_seq":
            _check_float_seq(frame, path, field)
    check_not_null(frame, path, required)
    return frame


def _parse_header(path: Path, header: str, line: int) -> dict[str, str]:
    """``{field: type}`` from a ``field:type`` header line."""
    fields: dict[str, str] = {}
    for cell in header.split("\t"):
        field, _, kind = cell.strip().rpartition(":")
        if not field or kind not in FIELD_TYPES:
            want = "field:" + "|".join(FIELD_TYPES)
            raise data_error(path, f"bad header cell {cell!r} (want {want})", line=line)
        if field in fields:
            raise data_error(path, f"duplicate field {field!r}", line=line)
        fields[field] = kind
    return fields


def _convert(field: str, kind: str) -> pl.Expr:
    """Expression turning the raw text of a non-float field into its typed value."""
    col = pl.col(field)
    if kind == "token":
        return pl.when(col.str.strip_chars() != "").then(col).alias(field)
    seq = col.str.extract_all(r"\S+")
    if kind == "float_seq":
        return seq.cast(pl.List(pl.Float64), strict=False).alias(field)
    return seq.alias(field)


def _check_float_seq(frame: pl.DataFrame, path: Path, field: str) -> None:
    """Raise on the first ``float_seq`` element that did not parse (null after the cast)."""
    bad = frame[field].list.eval(pl.element().is_null()).list.any()
    if bad.any():
        line = int(frame.filter(bad)[LINE][0])
        raise data_error(path, "non-numeric element in float_seq", line=line, column=field)


def _item_table(path: Path) -> pl.DataFrame:
    """``.item`` with ``category``/``tags`` from a class-like field and ``title``."""
    items = read_atomic(path, required=("item_id",))
    check_unique(items, path, "item_id")
    source = next((f for f in CATEGORY_FIELDS if f in items.columns), None)
    if source is not None:
        col = pl.col(source)
        tags = col if items[source].dtype == pl.List(pl.Utf8) else pl.concat_list(col)
        items = items.with_columns(
            tags.list.drop_nulls().list.first().alias("category"),
            tags.list.drop_nulls().alias("tags"),
        )
        if source not in ("category", "tags"):
            items = items.drop(source)
    title = next((f for f in TITLE_FIELDS if f in items.columns), None)
    if title is not None:
        col = pl.col(title)
        text = col.list.join(" ") if items[title].dtype == pl.List(pl.Utf8) else col
        items = items.with_columns(text.alias("title"))
        if title != "title":
            items = items.drop(title)
    return items


def _kg(path: Path) -> pl.DataFrame | None:
    """``.kg`` triples as ``head, relation, tail`` (Utf8), or ``None`` without the file."""
    if not path.is_file():
        return None
    triples = read_atomic(path, required=tuple(_KG_FIELDS))
    return triples.select(pl.col(f).cast(pl.Utf8).alias(new) for f, new in _KG_FIELDS.items())


def _links(path: Path, dataset: Dataset) -> pl.DataFrame | None:
    """``.link`` as ``item_idx`` (Int64, known items only) and ``entity`` (Utf8)."""
    if not path.is_file():
        return None
    links = read_atomic(path, required=("item_id", "entity_id"))
    idx = dataset.item_ids.lookup(links["item_id"].to_list())
    frame = pl.DataFrame({"item_idx": idx, "entity": links["entity_id"].cast(pl.Utf8)})
    return frame.filter(pl.col("item_idx") >= 0)
