"""The CLI rows of the README's bad-input table: each bad input gives one ``error:`` line
(exit 2) or one ``warning:`` line, never a traceback. Run in-process through ``cli.main``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import polars as pl
import pytest

from funnelrec.cli import main
from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.synthetic import generate
from funnelrec.errors import ArtifactError, ConfigError, DataWarning
from funnelrec.pipeline import Funnel

CONFIG = {
    "k": 5,
    "recall": {"total": 40, "channels": [{"name": "popular"}, {"name": "itemcf"}]},
    "prerank": {"keep": 30},
    "rank": {"keep": 20},
    "rerank": [{"name": "seen_filter"}],
}


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """Exit code and stderr of ``funnelrec ARGS``."""
    monkeypatch.setattr("sys.argv", ["funnelrec", *args])
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as exit_:
            main()
    return int(exit_.value.code or 0), capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def world() -> Dataset:
    return generate(n_users=120, n_items=200, n_interactions=2500)


@pytest.fixture
def artifact(world: Dataset, tmp_path: Path) -> Path:
    path = tmp_path / "art"
    Funnel(parse_config(CONFIG)).fit(world).save(path)
    return path


def write_config(path: Path, rerank: list[dict[str, object]]) -> Path:
    lines = ["k = 5", "[recall]", "total = 30", "[[recall.channels]]", 'name = "popular"']
    for step in rerank:
        lines += ["[[rerank]]", f'name = "{step["name"]}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_on_empty_interactions_is_a_data_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "u.data"
    empty.write_text("")
    config = write_config(tmp_path / "c.toml", [])
    out = str(tmp_path / "x")
    code, err = cli(monkeypatch, capsys, "fit", "-c", str(config), "-d", str(empty), "-o", out)
    assert (code, err) == (2, f"error: {empty}: no interactions (empty file?): nothing to fit")
    assert not (tmp_path / "x").exists()


def test_missing_item_file_names_the_file_and_the_stage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    rows = [
        f"{u}\t{i}\t4\t{878000000 + 60 * (u * 7 + i)}" for u in range(1, 9) for i in range(1, 6)
    ]
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    config = write_config(tmp_path / "c.toml", [{"name": "dedup"}])
    out = str(tmp_path / "o")
    code, err = cli(monkeypatch, capsys, "fit", "-c", str(config), "-d", str(folder), "-o", out)
    assert code == 2
    assert err.splitlines()[:2] == [
        f"error: config does not fit dataset 'ml-100k' (1 problem; item file "
        f"{folder / 'u.item'} is missing):",
        "  - rerank[0] dedup: needs item column 'title' (duplicate keys); set key (or key = "
        "null) to an existing item column, add the column to the item table, or drop this "
        "stage (item columns are: none)",
    ]


def test_interactions_with_items_absent_from_the_item_table_warn_with_a_count() -> None:
    frame = pl.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "z"], "timestamp": [1, 2, 3]}
    )
    items = pl.DataFrame({"item_id": ["x"], "title": ["X"]})
    with pytest.warns(DataWarning, match=r"^t: 2 item id\(s\) in the interactions are not in"):
        Dataset.from_frame(frame, items=items, name="t")


def test_cli_prints_a_data_warning_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "t.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\n"
        + "".join(f"u{u}\ti{i}\t{u * 10 + i}\n" for u in range(6) for i in range(4))
    )
    (tmp_path / "t.item").write_text("item_id:token\ttitle:token\ni0\tZero\ni1\tOne\n")
    config = write_config(tmp_path / "c.toml", [])
    out = str(tmp_path / "o")
    code, err = cli(monkeypatch, capsys, "fit", "-c", str(config), "-d", str(tmp_path), "-o", out)
    assert code == 0
    assert err.splitlines() == [
        "warning: t: 2 item id(s) in the interactions are not in the item table (2 items); "
        "they are added without attributes"
    ]


@pytest.mark.parametrize("k", ["0", "-1"])
def test_recommend_rejects_k_below_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], artifact: Path, k: str
) -> None:
    code, err = cli(monkeypatch, capsys, "recommend", "-a", str(artifact), "-u", "u0001", "--k", k)
    assert (code, err) == (2, f"error: k must be >= 1, got {k}")


def test_report_rejects_k_below_1_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], artifact: Path
) -> None:
    args = ("report", "-a", str(artifact), "-d", "synthetic", "-o", "r.html", "--k", "0")
    assert cli(monkeypatch, capsys, *args) == (2, "error: k must be >= 1, got 0")


def test_query_for_rejects_k_below_1_and_converts_ids(world: Dataset) -> None:
    funnel = Funnel(parse_config(CONFIG)).fit(world)
    with pytest.raises(ConfigError, match="k must be >= 1, got 0"):
        funnel.query_for(["u0001"], k=0)
    ints = world.replace(user_ids=type(world.user_ids)(range(world.n_users), name="user_id"))
    funnel.dataset_ = ints
    query = funnel.query_for(["7", 7, "nobody"])  # "7" is user 7 in a catalogue of ints
    assert query.user_idx.tolist() == [7, 7, -1]


def corrupt(artifact: Path, how: str) -> Path:
    if how == "truncated npz":
        target = next(artifact.glob("recall/itemcf/sparse_*.npz"))
        target.write_bytes(target.read_bytes()[:100])
    elif how == "flipped byte":
        target = artifact / "data" / "interactions.parquet"
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif how == "broken state.json":
        target = artifact / "recall" / "popular" / "state.json"
        target.write_text("{broken")
    else:
        target = artifact / "meta.json"
        target.write_text("{broken")
    return target.resolve()


@pytest.mark.parametrize(
    "how", ["truncated npz", "flipped byte", "broken state.json", "broken meta.json"]
)
def test_corrupt_artifact_is_one_line_naming_the_file(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    artifact: Path,
    how: str,
) -> None:
    target = corrupt(artifact, how)
    code, err = cli(monkeypatch, capsys, "recommend", "-a", str(artifact), "-u", "u0001")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: {target}: corrupt artifact file (")
    with pytest.raises(ArtifactError, match=str(target)):
        Funnel.load(artifact)


def test_unsupported_artifact_format_is_named(artifact: Path) -> None:
    meta = json.loads((artifact / "meta.json").read_text())
    (artifact / "meta.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ArtifactError, match="artifact format 99 is not supported"):
        Funnel.load(artifact)


def test_legacy_artifact_without_manifest_still_names_an_unreadable_part(artifact: Path) -> None:
    meta = json.loads((artifact / "meta.json").read_text())
    del meta["files"], meta["format"]
    (artifact / "meta.json").write_text(json.dumps(meta))
    assert Funnel.load(artifact).dataset.n_users == 120  # format 1 still loads
    corrupt(artifact, "truncated npz")
    with pytest.raises(ArtifactError, match=r"recall/itemcf: unreadable artifact part"):
        Funnel.load(artifact)


def test_short_admin_token_counts_characters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], artifact: Path
) -> None:
    monkeypatch.setenv("FUNNELREC_ADMIN_TOKEN", "short")
    code, err = cli(monkeypatch, capsys, "serve", "-a", str(artifact))
    assert (code, err) == (
        2,
        "error: serve settings: 'admin_token': must be at least 16 characters",
    )
