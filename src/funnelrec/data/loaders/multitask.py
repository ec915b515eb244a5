"""Multi-label tabular datasets: census-income (the MMoE paper's set-up) and Ali-CCP /
AliExpress (click → conversion, ESMM's set-up).

Each loader returns a ``MultiTaskTable``: string frames per part, the feature columns and
the ``TaskSpec`` of every label. ``encode`` fits the preprocessing on train only (through
``CTRTable.encode``: vocabularies with OOV, log-standardised numerics) and gives one
``Batch`` per part whose ``label`` is ``[N, T]`` (column ``t`` = task ``t``).

* census-income: the 42-column file (no header); tasks ``income`` (``income_50k`` is
  ``50000+.``) and ``marital`` (``marital_stat`` is ``Never married``); ``instance_weight``
  is not a feature; the numeric columns are both dense and categorical fields (most have
  few distinct values, e.g. age, weeks worked). The only file here is the public test
  split, so ``split622`` cuts it 60/20/20 at random with a fixed seed (2024 by default).
* Ali-CCP (``ali_ccp_{train,val,test}*.csv``): labels ``click``, ``purchase``; numbered
  fields are categorical, ``D*`` fields dense.
* AliExpress (``aliexpress_{train,test}*.csv``): labels ``click``, ``conversion``;
  ``categorical_*`` and ``numerical_*`` fields (``search_id`` is not a feature); the last
  10% of train is the validation part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from funnelrec.batch import Batch, Schema
from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders.ctr import CTRTable
from funnelrec.errors import DataError

F32 = np.float32
CENSUS_COLUMNS = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin",
    "sex", "union_member", "unemp_reason", "full_or_part_emp", "capital_gains",
    "capital_losses", "stock_dividends", "tax_filer_stat", "region_prev_res", "state_prev_res",
    "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa", "mig_chg_reg",
    "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp", "fam_under_18",
    "country_father", "country_mother", "country_self", "citizenship", "own_or_self",
    "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
)  # fmt: skip
CENSUS_NUMERIC = (
    "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp",
    "weeks_worked",
)  # fmt: skip


@dataclass(frozen=True)
class TaskSpec:
    """One prediction task: label ``column``; positive when equal to ``positive`` (compared
    as strings) or, without ``positive``, when the value is a number ``> 0``."""

    name: str
    column: str
    positive: str | None = None

    def labels(
        self, frame: pl.DataFrame, source: str = "table"
    ) -> np.ndarray[tuple[int], np.dtype[np.float32]]:
        """``[rows]`` 0/1 labels of ``frame``; an unknown column is a ``DataError`` naming it."""
        if self.column not in frame.columns:
            raise DataError(
                f"{source}: task {self.name!r}: unknown label column {self.column!r}; "
                f"columns: {frame.columns}"
            )
        col = frame[self.column]
        if self.positive is not None:
            return (col.cast(pl.Utf8).str.strip_chars() == self.positive).to_numpy().astype(F32)
        values = col.cast(pl.Float64, strict=False)
        if values.is_null().any():
            row = int(np.flatnonzero(values.is_null().to_numpy())[0])
            raise DataError(f"{source}: task {self.name!r}: non-numeric label at row {row}")
        return (values.to_numpy() > 0).astype(F32)


CENSUS_TASKS = (
    TaskSpec("income", "income_50k", "50000+."),
    TaskSpec("marital", "marital_stat", "Never married"),
)


@dataclass(frozen=True)
class MultiTaskTable:
    """Parts (``train``/``valid``/``test``) of a multi-label table, all columns strings."""

    name: str
    parts: dict[str, pl.DataFrame]
    tasks: tuple[TaskSpec, ...]
    categorical: tuple[str, ...]
    numeric: tuple[str, ...] = ()

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def with_tasks(self, tasks: Sequence[TaskSpec]) -> MultiTaskTable:
        """Same table with other tasks; label columns used as features are dropped from them."""
        label_cols = {t.column for t in tasks}
        return MultiTaskTable(
            self.name, self.parts, tuple(tasks),
            tuple(c for c in self.categorical if c not in label_cols),
            tuple(c for c in self.numeric if c not in label_cols),
        )  # fmt: skip

    def labels(self, part: str) -> np.ndarray[tuple[int, int], np.dtype[np.float32]]:
        """``[rows, T]`` labels of one part."""
        frame = self.parts[part]
        cols = [t.labels(frame, f"{self.name}/{part}") for t in self.tasks]
        return np.stack(cols, axis=1) if cols else np.zeros((frame.height, 0), dtype=F32)

    def encode(self, min_count: int = 2) -> tuple[Schema, dict[str, Batch]]:
        """Fit the preprocessing on train; ``(schema, {part: batch with labels [N, T]})``."""
        labels = {p: self.labels(p) for p in self.parts}
        parts = {p: f.with_columns(pl.lit(0).alias("label")) for p, f in self.parts.items()}
        table = CTRTable(self.name, parts, self.categorical,
                         self.numeric)  # fmt: skip
        schema, batches = table.encode(min_count)
        return schema, {p: batches[p].with_labels(torch.from_numpy(labels[p])) for p in self.parts}


def split622(n: int, seed: int = 2024) -> dict[str, np.ndarray[tuple[int], np.dtype[np.int64]]]:
    """Row indices of a random 60/20/20 train/valid/test split of ``n`` rows."""
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    a, b = round(0.6 * n), round(0.8 * n)
    return {"train": perm[:a], "valid": perm[a:b], "test": perm[b:]}


def load_census_income(path: str | Path, seed: int = 2024) -> MultiTaskTable:
    """census-income: a folder holding ``census-income*.gz``/``.csv`` or the file itself;
    split 60/20/20 with ``seed`` (``split622``)."""
    file = _find(Path(path), ("census-income*.gz", "census-income*.csv", "census-income*"))
    frame = pl.read_csv(
        file, has_header=False, new_columns=list(CENSUS_COLUMNS), infer_schema=False,
        quote_char=None, null_values=["?"], truncate_ragged_lines=False,
    ).with_columns(pl.all().str.strip_chars())  # fmt: skip
    if frame.width != len(CENSUS_COLUMNS):
        raise DataError(f"{file}: expected {len(CENSUS_COLUMNS)} columns, found {frame.width}")
    parts = {p: frame[rows] for p, rows in split622(frame.height, seed).items()}
    skip = {"instance_weight", "income_50k", "marital_stat"}
    cats = tuple(c for c in CENSUS_COLUMNS if c not in skip)  # numerics too (few values)
    return MultiTaskTable("census-income", parts, CENSUS_TASKS, cats, CENSUS_NUMERIC)


def load_ali_ccp(folder: str | Path) -> MultiTaskTable:
    """Ali-CCP-format folder: ``*train*.csv``, ``*val*.csv``, ``*test*.csv`` with header."""
    root = Path(folder)
    parts = {p: _csv(_find(root, (f"*{g}*.csv",))) for p, g in
             (("train", "train"), ("valid", "val"), ("test", "test"))}  # fmt: skip
    cols = parts["train"].columns
    tasks = (TaskSpec("click", "click"), TaskSpec("purchase", "purchase"))
    dense = tuple(c for c in cols if c.startswith("D"))
    cats = tuple(c for c in cols if c not in ("click", "purchase") and c not in dense)
    return MultiTaskTable("ali-ccp", parts, tasks, cats, dense)


def load_aliexpress(folder: str | Path) -> MultiTaskTable:
    """AliExpress-format folder: ``*train*.csv`` and ``*test*.csv`` with header; the last 10%
    of train rows is the validation part."""
    root = Path(folder)
    train, test = _csv(_find(root, ("*train*.csv",))), _csv(_find(root, ("*test*.csv",)))
    cut = max(int(train.height * 0.9), 1)
    parts = {"train": train[:cut], "valid": train[cut:], "test": test}
    cols = train.columns
    tasks = (TaskSpec("click", "click"), TaskSpec("conversion", "conversion"))
    return MultiTaskTable(
        "aliexpress", parts, tasks,
        tuple(c for c in cols if c.startswith("categorical_")),
        tuple(c for c in cols if c.startswith("numerical_")),
    )  # fmt: skip


def load_multitask(path: str | Path, seed: int = 2024) -> MultiTaskTable:
    """Detect the format: census-income file/folder, Ali-CCP or AliExpress folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{path}: no such file or folder")
    name = p.name.lower()
    if "census" in name or (p.is_dir() and any(p.glob("census-income*"))):
        return load_census_income(p, seed)
    if p.is_dir() and any(p.glob("*ali_ccp*.csv")):
        return load_ali_ccp(p)
    if p.is_dir() and any(p.glob("*aliexpress*.csv")):
        return load_aliexpress(p)
    raise DataError(
        f"{path}: not a multi-task dataset (looked for census-income*, *ali_ccp*.csv, "
        "*aliexpress*.csv)"
    )


def is_multitask_path(path: Path) -> bool:
    """Whether ``path`` looks like a dataset ``load_multitask`` reads."""
    if path.is_file():
        return path.name.startswith("census-income")
    return path.is_dir() and any(
        any(path.glob(g)) for g in ("census-income*", "*ali_ccp*.csv", "*aliexpress*.csv")
    )


def _find(root: Path, patterns: Sequence[str]) -> Path:
    if root.is_file():
        return root
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix != ".md")
        if found:
            return found[0]
    raise DataError(f"{root}: no file matching {list(patterns)}")


def _csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False, quote_char=None)


ALI_CCP_USER, ALI_CCP_ITEM = "101", "205"  # Ali-CCP field ids of the user and the item
ALI_CCP_USER_FIELDS = ("121", "122", "124", "125", "126", "127", "128", "129")
ALI_CCP_ITEM_FIELDS = ("206", "207", "210", "216")


def ali_ccp_dataset(folder: str | Path) -> Dataset:
    """An Ali-CCP-format folder as a funnel ``Dataset``: every row (train, val, test in order;
    the row order is the time) is an impression of item ``205`` to user ``101``; clicked rows
    are the interactions with ``click`` and ``purchase`` feedback; the user and item fields
    become the user and item tables (first value seen)."""
    table = load_ali_ccp(folder)
    rows = pl.concat([table.parts[p] for p in ("train", "valid", "test")])
    rows = rows.with_columns(
        pl.int_range(rows.height).cast(pl.Float64).alias("timestamp"),
        pl.col("click").cast(pl.Int8), pl.col("purchase").cast(pl.Int8),
    )  # fmt: skip
    users = rows.select(ALI_CCP_USER, *ALI_CCP_USER_FIELDS)
    users = users.unique(ALI_CCP_USER, keep="first", maintain_order=True)
    items = rows.select(ALI_CCP_ITEM, *ALI_CCP_ITEM_FIELDS)
    items = items.unique(ALI_CCP_ITEM, keep="first", maintain_order=True)
    clicked = rows.filter(pl.col("click") == 1)
    ds = Dataset.from_frame(
        clicked, user_col=ALI_CCP_USER, item_col=ALI_CCP_ITEM, time_col="timestamp",
        feedback_cols=("click", "purchase"), items=items, users=users, name="ali-ccp",
    )  # fmt: skip
    impressions = pl.DataFrame({
        "user_idx": ds.user_ids.extend(rows[ALI_CCP_USER].to_numpy()),
        "item_idx": ds.item_ids.extend(rows[ALI_CCP_ITEM].to_numpy()),
        "timestamp": rows["timestamp"].to_numpy(),
        "clicked": rows["click"].to_numpy(),
    })  # fmt: skip
    return ds.replace(impressions=impressions)
