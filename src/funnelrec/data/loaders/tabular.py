"""Generic interaction tables (CSV/TSV or Parquet) with a column mapping.

Row numbers in errors are file lines for CSV/TSV (header = line 1) and 1-based rows for Parquet.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders._text import LINE, check_unique, data_error, require_file
from funnelrec.errors import DataError

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of an interaction table hold what.

    Attributes:
        user: user id column.
        item: item id column.
        timestamp: event time (numbers in seconds, dates/datetimes or ISO strings); ``None``
            means row order is time.
        feedback: numeric feedback columns (rating, click, like, purchase...).
        weight: optional per-event weight column.
    """

    user: str
    item: str
    timestamp: str | None = None
    feedback: tuple[str, ...] = ()
    weight: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "feedback", tuple(self.feedback))

    @property
    def columns(self) -> list[str]:
        """Every mapped column name."""
        optional = [c for c in (self.timestamp, self.weight) if c is not None]
        return [self.user, self.item, *optional, *self.feedback]


def load_table(
    path: str | Path,
    mapping: ColumnMapping,
    *,
    items: str | Path | None = None,
    item_key: str | None = None,
    users: str | Path | None = None,
    user_key: str | None = None,
    tag_separator: str = "|",
    name: str | None = None,
) -> Dataset:
    """Load interactions from a CSV/TSV/Parquet table (chosen by extension).

    Args:
        path: interaction table.
        mapping: column roles.
        items: optional item table; its key column is ``item_key`` (default ``mapping.item``).
            A string ``tags`` column is split on ``tag_separator``.
        users: optional user table keyed by ``user_key`` (default ``mapping.user``).
        tag_separator: separator of tags in a string ``tags`` column.
        name: dataset name; defaults to the file stem.

    Raises:
        DataError: unreadable file, missing column, empty id or non-numeric value (naming the
            file, the line/row and the column).
    """
    src = Path(path)
    frame = read_table(src)
    _require_columns(frame, src, mapping.columns)
    _check_ids(frame, src, [mapping.user, mapping.item])
    casts = [_timestamp(frame, src, mapping.timestamp)] if mapping.timestamp else []
    for col in (*mapping.feedback, *([mapping.weight] if mapping.weight else [])):
        casts.append(_numeric(frame, src, col))
    frame = frame.with_columns(casts)
    id_types = {mapping.user: frame[mapping.user].dtype, mapping.item: frame[mapping.item].dtype}
    item_table = user_table = None
    if items is not None:
        item_table = _side_table(Path(items), item_key or mapping.item, mapping.item, id_types)
        item_table = _split_tags(item_table, tag_separator)
    if users is not None:
        user_table = _side_table(Path(users), user_key or mapping.user, mapping.user, id_types)
    dataset = Dataset.from_frame(
        frame.drop(LINE),
        user_col=mapping.user,
        item_col=mapping.item,
        time_col=mapping.timestamp,
        feedback_cols=mapping.feedback,
        weight_col=mapping.weight,
        items=item_table,
        users=user_table,
        name=name or src.stem,
    )
    return dataset.replace(meta={"format": "table", "source": str(src)})


def read_table(path: Path) -> pl.DataFrame:
    """Read a CSV/TSV/Parquet file, adding ``_line`` (CSV line or Parquet row number)."""
    suffix = require_file(path).suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return pl.read_parquet(path).with_row_index(LINE, offset=1)
        if suffix in CSV_SUFFIXES:
            frame = pl.read_csv(path, separator=CSV_SUFFIXES[suffix], infer_schema_length=10_000)
            return frame.with_row_index(LINE, offset=2)
    except pl.exceptions.PolarsError as err:
        line = _first_ragged_line(path, CSV_SUFFIXES.get(suffix))
        raise data_error(path, f"cannot read: {err}".split("\n")[0], line=line) from None
    raise DataError(f"{path}: unsupported table format {suffix!r} (use .csv, .tsv, .parquet)")


def _first_ragged_line(path: Path, separator: str | None) -> int | None:
    """Line of the first CSV row whose field count differs from the header (error path only)."""
    if separator is None:
        return None
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=separator)
        header = next(reader, [])
        for row in reader:
            if len(row) != len(header) and row:
                return reader.line_num
    return None


def _require_columns(frame: pl.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = [c for c in frame.columns if c != LINE]
        raise data_error(path, f"missing column(s) {missing}; columns are {have}")


def _check_ids(frame: pl.DataFrame, path: Path, columns: list[str]) -> None:
    """Ids must be present (non-null, non-empty)."""
    for col in columns:
        missing = frame[col].is_null()
        if frame[col].dtype == pl.Utf8:
            missing = missing | (frame[col].str.strip_chars() == "")
        if missing.any():
            row = int(frame.filter(missing)[LINE][0])
            raise data_error(path, "missing id", line=row, column=col)


def _numeric(
    frame: pl.DataFrame,
    path: Path,
    col: str,
    values: pl.Series | None = None,
    what: str = "a number",
) -> pl.Series:
    """``values`` (default ``frame[col]``) as Float64; raise naming the first null/bad value."""
    cast = (frame[col] if values is None else values).cast(pl.Float64, strict=False).alias(col)
    if cast.null_count():
        row = frame.filter(cast.is_null()).row(0, named=True)
        raise data_error(path, f"expected {what}, got {row[col]!r}", line=row[LINE], column=col)
    return cast


def _timestamp(frame: pl.DataFrame, path: Path, col: str) -> pl.Series:
    """Timestamp column in seconds: numbers as-is; dates, datetimes and ISO strings converted."""
    values = frame[col]
    if values.dtype == pl.Utf8 and values.cast(pl.Float64, strict=False).null_count():
        parsed = values.str.to_datetime(strict=False)
        if parsed.null_count() < len(parsed):  # looks like dates: failures are reported below
            values = parsed
    if values.dtype == pl.Date:
        values = values.cast(pl.Datetime("ms"))
    if isinstance(values.dtype, pl.Datetime):
        values = values.dt.timestamp("ms") / 1000.0
    return _numeric(frame, path, col, values, what="a number or a date/time")


def _side_table(
    path: Path, key: str, id_col: str, id_types: dict[str, pl.DataType]
) -> pl.DataFrame:
    """Item/user table keyed by ``id_col`` (renamed from ``key``), ids cast like interactions."""
    table = read_table(path)
    _require_columns(table, path, [key])
    _check_ids(table, path, [key])
    if key != id_col:
        table = table.drop(id_col, strict=False).rename({key: id_col})
    check_unique(table, path, id_col)
    ids = table[id_col].cast(id_types[id_col], strict=False)
    if ids.null_count():
        row = table.filter(ids.is_null()).row(0, named=True)
        bad = f"id {row[id_col]!r} does not have the interaction id type {id_types[id_col]}"
        raise data_error(path, bad, line=row[LINE], column=key)
    return table.with_columns(ids).drop(LINE)


def _split_tags(items: pl.DataFrame, separator: str) -> pl.DataFrame:
    """Split a string ``tags`` column into ``List[str]`` (empty parts dropped)."""
    if "tags" not in items.columns or items["tags"].dtype != pl.Utf8:
        return items
    tags = (
        pl.col("tags").fill_null("").str.split(separator).list.eval(pl.element().str.strip_chars())
    )
    return items.with_columns(tags.list.filter(pl.element() != "").alias("tags"))
