"""Multi-label loaders: census-income, Ali-CCP, AliExpress; task specs; split622."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from funnelrec.data.loaders.multitask import (
    CENSUS_COLUMNS,
    TaskSpec,
    load_census_income,
    load_multitask,
    split622,
)
from funnelrec.errors import DataError


def test_split622_is_a_seeded_partition() -> None:
    parts = split622(1000, 2024)
    assert [len(parts[p]) for p in ("train", "valid", "test")] == [600, 200, 200]
    allrows = np.concatenate(list(parts.values()))
    np.testing.assert_array_equal(np.sort(allrows), np.arange(1000))
    np.testing.assert_array_equal(split622(1000, 2024)["test"], parts["test"])
    assert not np.array_equal(split622(1000, 1)["test"], parts["test"])


def _census_line(i: int) -> str:
    values = [str(i % 90), "Private", *(["x"] * 5), "Never married" if i % 3 else "Divorced"]
    values += ["y"] * (len(CENSUS_COLUMNS) - len(values) - 1)
    values.append("50000+." if i % 5 == 0 else "- 50000.")
    return ", ".join(values)


def test_census_loader_labels_and_split(tmp_path: Path) -> None:
    path = tmp_path / "census-income.test.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(_census_line(i) for i in range(100)) + "\n")
    table = load_multitask(tmp_path)
    assert table.task_names == ("income", "marital")
    assert sum(p.height for p in table.parts.values()) == 100
    schema, parts = table.encode(min_count=1)
    assert "marital_stat" not in [f.name for f in schema.sparse]  # labels are not features
    assert "instance_weight" not in [f.name for f in (*schema.sparse, *schema.dense)]
    y = np.concatenate([parts[p].label.numpy() for p in ("train", "valid", "test")])  # type: ignore[union-attr]
    assert y.shape == (100, 2) and y[:, 0].sum() == 20 and y[:, 1].sum() == 66


def test_unknown_label_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "census-income.test.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(_census_line(i) for i in range(20)) + "\n")
    table = load_census_income(path).with_tasks([TaskSpec("income", "income_5ok", "50000+.")])
    with pytest.raises(DataError, match="'income_5ok'"):
        table.encode()


def test_not_a_multitask_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a multi-task dataset"):
        load_multitask(tmp_path)


def test_ali_ccp_and_aliexpress_samples(shared_data: Path) -> None:
    root = shared_data / "multitask-tiny-samples"
    ali = load_multitask(root / "ali-ccp")
    assert ali.task_names == ("click", "purchase")
    schema, parts = ali.encode(min_count=1)
    assert {p: len(b) for p, b in parts.items()} == {"train": 100, "valid": 50, "test": 50}
    assert len(schema.sparse) == 23 and len(schema.dense) == 8
    y = parts["train"].label.numpy()  # type: ignore[union-attr]
    assert y.shape == (100, 2) and (y[:, 1] <= y[:, 0]).all()  # purchases are clicked
    ae = load_multitask(root / "aliexpress")
    schema, parts = ae.encode(min_count=1)
    assert len(schema.sparse) == 16 and len(schema.dense) == 63
    assert len(parts["test"]) == 20 and parts["test"].label.shape == (20, 2)  # type: ignore[union-attr]


def test_census_file_split(shared_data: Path) -> None:
    table = load_census_income(shared_data / "census-income", seed=2024)
    sizes = {p: f.height for p, f in table.parts.items()}
    assert sizes == {"train": 59857, "valid": 19953, "test": 19952}
    y = table.labels("train")
    assert 0.05 < y[:, 0].mean() < 0.075 and 0.40 < y[:, 1].mean() < 0.46


def test_ali_ccp_folder_loads_as_a_funnel_dataset(shared_data: Path) -> None:
    from funnelrec.data.loaders import load_dataset

    ds = load_dataset(shared_data / "multitask-tiny-samples" / "ali-ccp")
    assert ds.impressions is not None and ds.impressions.height == 200
    assert len(ds) == int(ds.impressions["clicked"].sum())  # interactions = clicked rows
    assert ds.interactions["purchase"].sum() <= len(ds)
    with pytest.raises(DataError, match="load_multitask"):
        load_dataset(shared_data / "census-income")
