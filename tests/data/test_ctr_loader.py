"""criteo-sample / avazu-sample loaders: preprocessing known answers, errors, real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from funnelrec.data.loaders.ctr import load_avazu_sample, load_criteo_sample
from funnelrec.encoders import OOV, PAD
from funnelrec.errors import DataError


def _criteo_line(label: int, ints: list[str], cats: list[str]) -> str:
    return "\t".join([str(label), *ints, *cats])


def _write_criteo(folder: Path) -> None:
    ints = [["0"] * 13, ["3"] * 13, [""] * 13]
    cats = [["a"] * 26, ["a"] * 26, ["b"] * 26]
    train = [_criteo_line(i % 2, ints[i], cats[i]) for i in range(3)]
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "dev.txt").write_text(_criteo_line(1, ["1"] * 13, [""] * 26) + "\n")
    (folder / "test.txt").write_text(_criteo_line(0, ["9"] * 13, ["zz"] * 26) + "\n")


def test_criteo_log_transform_and_rare_values_oov(tmp_path: Path) -> None:
    _write_criteo(tmp_path)
    schema, parts = load_criteo_sample(tmp_path).encode(min_count=2)
    assert len(schema.sparse) == 26 and len(schema.dense) == 13
    assert schema.sparse[0].size == 3  # pad, OOV and "a" (b is seen once)
    train = parts["train"]
    np.testing.assert_array_equal(train.sparse[:, 0].numpy(), [2, 2, OOV])
    # log1p(0) and log1p(3) standardised over train (missing -> 0 = the mean)
    np.testing.assert_allclose(train.dense[:, 0].numpy(), [-1.0, 1.0, 0.0], atol=1e-6)
    assert parts["dev"].sparse[0, 0] == PAD and parts["test"].sparse[0, 0] == OOV
    assert train.label is not None and train.label.tolist() == [0.0, 1.0, 0.0]


def test_avazu_header_only_in_train(tmp_path: Path) -> None:
    header = "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
    header += "app_category,device_id,device_ip,device_model,device_type,device_conn_type,"
    header += "C14,C15,C16,C17,C18,C19,C20,C21"
    row = ",".join(["7", "1", *["x"] * 22])
    (tmp_path / "train.csv").write_text(f"{header}\n{row}\n{row}\n")
    (tmp_path / "dev.csv").write_text(row + "\n")
    (tmp_path / "test.csv").write_text(row.replace(",1,", ",0,", 1) + "\n")
    schema, parts = load_avazu_sample(tmp_path).encode()
    assert len(schema.sparse) == 22 and not schema.dense
    assert len(parts["train"]) == 2 and len(parts["dev"]) == 1
    assert parts["test"].label is not None and parts["test"].label.tolist() == [0.0]


def test_bad_label_names_the_line(tmp_path: Path) -> None:
    _write_criteo(tmp_path)
    (tmp_path / "dev.txt").write_text(_criteo_line(1, ["1"] * 13, [""] * 26).replace("1", "7", 1))
    with pytest.raises(DataError, match="line 1"):
        load_criteo_sample(tmp_path)


def test_real_samples(shared_data: Path) -> None:
    _, parts = load_criteo_sample(shared_data / "criteo-sample").encode()
    assert [len(parts[p]) for p in ("train", "dev", "test")] == [7200, 409, 391]
    label = parts["train"].label
    assert label is not None and int(label.sum()) == 1549
    _, avazu = load_avazu_sample(shared_data / "avazu-sample").encode()
    assert [len(avazu[p]) for p in ("train", "dev", "test")] == [8087, 480, 432]
