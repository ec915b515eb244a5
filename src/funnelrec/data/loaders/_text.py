"""Shared helpers for delimited text files: vectorised splitting and casts with precise errors.

Every frame produced here carries a ``_line`` column (1-based line number in the file) so that a
bad value can be reported as ``file: line N, column 'x': ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from funnelrec.errors import DataError

LINE = "_line"


def data_error(
    path: Path, message: str, *, line: int | None = None, column: str | None = None
) -> DataError:
    """A ``DataError`` whose message names the file, the line and the column when known."""
    where = str(path)
    if line is not None:
        where += f": line {line}"
    if column is not None:
        where += f", column {column!r}" if line is not None else f": column {column!r}"
    return DataError(f"{where}: {message}")


def require_file(path: Path) -> Path:
    """Return ``path`` if it is a file, else raise a ``DataError`` naming it."""
    if not path.is_file():
        raise data_error(path, "file not found")
    return path


def read_lines(path: Path, encoding: str = "utf-8") -> pl.DataFrame:
    """Non-blank lines of a text file as a frame ``(_line, text)``.

    Lines are split on ``\\n`` only (``str.splitlines`` would also split on latin-1 ``\\x85``);
    a trailing ``\\r`` is removed.
    """
    raw = require_file(path).read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise data_error(path, f"cannot decode as {encoding}", line=line) from None
    frame = pl.DataFrame({"text": text.split("\n")}).with_row_index(LINE, offset=1)
    return frame.with_columns(
        pl.col(LINE).cast(pl.Int64), pl.col("text").str.strip_suffix("\r")
    ).filter(pl.col("text").str.strip_chars() != "")


def split_fields(lines: pl.DataFrame, path: Path, sep: str, names: list[str]) -> pl.DataFrame:
    """Split ``lines`` (from ``read_lines``) on ``sep`` into Utf8 columns ``names``.

    Raises:
        DataError: a line has another number of fields than ``len(names)``.
    """
    parts = lines.select(LINE, pl.col("text").str.split(sep).alias("f"))
    counts = parts["f"].list.len()
    bad = parts.filter(counts != len(names))
    if bad.height:
        n_found = len(bad["f"][0])
        raise data_error(
            path, f"expected {len(names)} fields, found {n_found}", line=int(bad[LINE][0])
        )
    return parts.select(
        LINE, *(pl.col("f").list.get(i).alias(name) for i, name in enumerate(names))
    )


def cast_fields(
    frame: pl.DataFrame,
    path: Path,
    dtypes: Mapping[str, pl.DataType | type[pl.DataType]],
    *,
    nullable: Iterable[str] = (),
) -> pl.DataFrame:
    """Cast Utf8 columns to ``dtypes``; empty strings become null where ``nullable``.

    Raises:
        DataError: naming file, line and column of the first value that does not parse, or of
            an empty value in a non-nullable column.
    """
    allow_null = set(nullable)
    out = []
    for col, dtype in dtypes.items():
        text = frame[col].str.strip_chars()
        empty = text.is_null() | (text == "")
        cast = text.cast(dtype, strict=False)
        failed = cast.is_null() & ~empty
        if col not in allow_null:
            failed = failed | empty
        if failed.any():
            row = frame.filter(failed).row(0, named=True)
            what = "is empty" if not row[col] or not row[col].strip() else f"bad value {row[col]!r}"
            raise data_error(
                path, f"{what} (expected {_type_name(dtype)})", line=row[LINE], column=col
            )
        out.append(cast.alias(col))
    return frame.with_columns(out)


def check_unique(frame: pl.DataFrame, path: Path, key: str) -> None:
    """Raise a ``DataError`` naming the line of the first repeated ``key``."""
    repeated = ~frame[key].is_first_distinct()
    if repeated.any():
        row = frame.filter(repeated).row(0, named=True)
        first = frame.filter(pl.col(key) == row[key])[LINE][0]
        message = f"duplicate key {row[key]!r} (first on line {first})"
        raise data_error(path, message, line=row[LINE], column=key)


def check_not_null(frame: pl.DataFrame, path: Path, columns: Iterable[str]) -> None:
    """Raise a ``DataError`` naming the line of the first null/empty value in ``columns``."""
    for col in columns:
        missing = frame[col].is_null()
        if frame[col].dtype == pl.Utf8:
            missing = missing | (frame[col].str.strip_chars() == "")
        if missing.any():
            line = frame.filter(missing)[LINE][0]
            raise data_error(path, "missing value", line=int(line), column=col)


def _type_name(dtype: pl.DataType | type[pl.DataType]) -> str:
    if dtype.is_integer():
        return "an integer"
    if dtype.is_float():
        return "a number"
    return str(dtype)
