"""Loaders: small fixture files written to tmp_path, malformed-file errors, and real data."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from funnelrec.data import Dataset
from funnelrec.data.loaders import (
    ColumnMapping,
    load_dataset,
    load_movielens_1m,
    load_movielens_100k,
    load_recbole_atomic,
    load_sequences,
    load_table,
)
from funnelrec.errors import DataError, DataWarning

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FLAGS_OFF = "|".join(["0"] * 19)


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


def _user_history(ds: Dataset, user: Any) -> list[Any]:
    offsets, items, _ = ds.sequences
    u = ds.user_ids.index(user)
    return ds.item_ids.external(items[offsets[u] : offsets[u + 1]])


@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    root = tmp_path / "ml-100k"
    root.mkdir()
    _write(root / "u.data", ["1\t10\t4\t100", "2\t20\t3\t50", "1\t20\t5\t100", "1\t30\t1\t90"])
    _write(
        root / "u.item",
        [
            f"10|Amélie (2001)|01-Jan-2001||http://x|{_flags(5, 14)}",
            f"20|GoldenEye (1995)|01-Jan-1995||http://y|{_flags(1, 2, 16)}",
            f"30|unknown||||{_flags(0)}",
            f"40|Never Rated (1990)|01-Jan-1990||http://z|{FLAGS_OFF}",
        ],
        encoding="latin-1",
    )
    _write(root / "u.user", ["1|24|M|technician|85711", "2|53|F|other|94043"])
    return root


@pytest.fixture
def ml1m(tmp_path: Path) -> Path:
    root = tmp_path / "ml-1m"
    root.mkdir()
    _write(root / "ratings.dat", ["1::3::4::978300760", "1::1::5::978300760", "2::2::3::5"])
    _write(
        root / "movies.dat",
        [
            "1::Toy Story (1995)::Animation|Children's|Comedy",
            "2::Jumanji (1995)::Adventure",
            "3::Café Noir (1999)::Drama",
        ],
        encoding="latin-1",
    )
    _write(root / "users.dat", ["1::F::1::10::48067", "2::M::56::16::70072"])
    return root


@pytest.fixture
def recbole(tmp_path: Path) -> Path:
    root = tmp_path / "rb"
    root.mkdir()
    _write(
        root / "toy.inter",
        ["user_id:token\titem_id:token\trating:float\ttimestamp:float",
         "u1\ti1\t4\t10", "u2\ti2\t3\t5", "u1\ti2\t5\t10"],
    )  # fmt: skip
    _write(
        root / "toy.item",
        ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
         "i1\tToy Story\t1995\tAnimation Comedy", "i2\tHeat\t1995\t", "i3\tAlien\t1979\tSci-Fi"],
    )  # fmt: skip
    _write(root / "toy.user", ["user_id:token\tage:float", "u1\t24", "u2\t"])
    _write(
        root / "toy.kg",
        ["head_id:token\trelation_id:token\ttail_id:token", "m.1\tfilm.actor\tm.9"],
    )
    _write(root / "toy.link", ["item_id:token\tentity_id:token", "i1\tm.1", "i9\tm.7"])
    return root


# -- MovieLens 100K ----------------------------------------------------------------------------
def test_ml100k_tables_and_file_order(ml100k: Path) -> None:
    ds = load_movielens_100k(ml100k)
    assert (ds.name, len(ds), ds.n_users, ds.n_items, ds.feedback) == (
        "ml-100k",
        4,
        2,
        4,
        ("rating",),
    )
    assert ds.item_ids.ids == [10, 20, 30, 40]
    assert ds.items["title"][0] == "Amélie (2001)"
    assert ds.items["tags"].to_list() == [
        ["Comedy", "Romance"], ["Action", "Adventure", "Thriller"], ["unknown"], []
    ]  # fmt: skip
    assert ds.items["category"].to_list() == ["Comedy", "Action", "unknown", None]
    assert ds.items["year"].to_list() == [2001, 1995, None, 1990]
    assert ds.users is not None and ds.users["occupation"].to_list() == ["technician", "other"]
    assert ds.arrays.feedback["rating"].tolist() == [4.0, 3.0, 5.0, 1.0]
    assert _user_history(ds, 1) == [30, 10, 20]  # stable by time: 10 before 20 (same second)


def test_ml100k_genre_names_from_u_genre(ml100k: Path) -> None:
    names = [f"G{i}" for i in range(19)]
    _write(ml100k / "u.genre", [f"{g}|{i}" for i, g in reversed(list(enumerate(names)))])
    ds = load_movielens_100k(ml100k)
    assert ds.items["tags"][0].to_list() == ["G5", "G14"]


def test_ml100k_only_ratings(tmp_path: Path) -> None:
    _write(tmp_path / "u.data", ["1\t10\t4\t100"])
    ds = load_movielens_100k(tmp_path)
    assert ds.items.columns == ["item_idx"] and ds.users is None


@pytest.mark.parametrize(
    ("file", "content", "needles"),
    [
        (
            "u.data",
            "1\t10\t4\t100\n2\t20\t3\t50\n1\t30\t1\tsoon\n",
            ["line 3", "'timestamp'", "soon"],
        ),
        ("u.data", "1\t10\t4\t100\n2\t20\t3\n", ["line 2", "expected 4 fields, found 3"]),
        ("u.data", "1\t10\t4\t100\n\nx\t20\t3\t50\n", ["line 3", "'user_id'"]),
        ("u.item", f"10|A|||u|{_flags(1)}\n20|B|||u|{_flags(1)[:-1]}x\n", ["line 2", "'_g18'"]),
        ("u.item", f"10|A|||u|{_flags(1)}\n10|B|||u|{_flags(2)}\n", ["line 2", "duplicate key 10"]),
        ("u.user", "1|24|M|x|1\n2|old|F|y|2\n", ["line 2", "'age'", "'old'"]),
    ],
)
def test_ml100k_malformed(ml100k: Path, file: str, content: str, needles: list[str]) -> None:
    (ml100k / file).write_text(content)
    with pytest.raises(DataError) as err:
        load_movielens_100k(ml100k)
    assert file in str(err.value)
    for needle in needles:
        assert needle in str(err.value)


def test_ml100k_missing_ratings(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"u\.data: file not found"):
        load_movielens_100k(tmp_path)


def test_latin1_decode_error_names_line(tmp_path: Path) -> None:
    (tmp_path / "toy.inter").write_bytes(b"user_id:token\titem_id:token\nu1\ti1\nu\xff\ti2\n")
    with pytest.raises(DataError, match=r"toy\.inter: line 3: cannot decode"):
        load_recbole_atomic(tmp_path)


# -- MovieLens 1M ------------------------------------------------------------------------------
def test_ml1m(ml1m: Path) -> None:
    ds = load_movielens_1m(ml1m)
    assert (ds.name, len(ds), ds.n_users, ds.n_items) == ("ml-1m", 3, 2, 3)
    assert ds.items["tags"][0].to_list() == ["Animation", "Children's", "Comedy"]
    assert ds.items["category"].to_list() == ["Animation", "Adventure", "Drama"]
    assert ds.items["year"].to_list() == [1995, 1995, 1999]
    assert ds.items["title"][2] == "Café Noir (1999)"
    assert ds.users is not None and ds.users["age"].to_list() == [1, 56]
    assert _user_history(ds, 1) == [3, 1]  # equal timestamps keep file order


def test_ml1m_malformed_rating(ml1m: Path) -> None:
    _write(ml1m / "ratings.dat", ["1::3::4::978300760", "1::1::five::978300760"])
    with pytest.raises(DataError, match=r"ratings\.dat: line 2, column 'rating'"):
        load_movielens_1m(ml1m)


# -- RecBole atomic ----------------------------------------------------------------------------
def test_recbole_all_files(recbole: Path) -> None:
    ds = load_recbole_atomic(recbole)
    assert (ds.name, len(ds), ds.n_users, ds.n_items, ds.feedback) == ("toy", 3, 2, 3, ("rating",))
    assert ds.item_ids.ids == ["i1", "i2", "i3"]
    assert ds.items["title"].to_list() == ["Toy Story", "Heat", "Alien"]
    assert ds.items["category"].to_list() == ["Animation", None, "Sci-Fi"]
    assert ds.items["tags"].to_list() == [["Animation", "Comedy"], [], ["Sci-Fi"]]
    assert ds.users is not None and ds.users["age"].to_list() == [24.0, None]
    assert ds.kg is not None and ds.kg.rows() == [("m.1", "film.actor", "m.9")]
    assert ds.item_entities is not None and ds.item_entities.rows() == [(0, "m.1")]
    assert ds.item_entities.schema == {"item_idx": pl.Int64, "entity": pl.Utf8}


def test_recbole_without_timestamp_uses_row_order(tmp_path: Path) -> None:
    _write(
        tmp_path / "t.inter", ["user_id:token\titem_id:token\tlabel:float", "a\tx\t1", "a\ty\t0"]
    )
    ds = load_recbole_atomic(tmp_path, "t")
    assert ds.feedback == ("label",) and ds.arrays.timestamp.tolist() == [0.0, 1.0]
    assert ds.kg is None and ds.item_entities is None


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        (["user_id:token\titem_id:int", "a\tb"], ["line 1", "item_id:int"]),
        (["user:token\titem_id:token", "a\tb"], ["line 1", "missing field 'user_id'"]),
        (["user_id:token\titem_id:token\tr:float", "a\tb\t1", "a\tb\tx"], ["line 3", "'r'"]),
        (["user_id:token\titem_id:token", "a\tb", "a"], ["line 3", "expected 2 fields"]),
        (["user_id:token\titem_id:token", "a\tb", "\tc"], ["line 3", "'user_id'", "missing"]),
    ],
)
def test_recbole_malformed(tmp_path: Path, lines: list[str], needles: list[str]) -> None:
    _write(tmp_path / "bad.inter", lines)
    with pytest.raises(DataError) as err:
        load_recbole_atomic(tmp_path)
    assert "bad.inter" in str(err.value)
    for needle in needles:
        assert needle in str(err.value)


def test_recbole_name_inference(recbole: Path) -> None:
    _write(recbole / "other.inter", ["user_id:token\titem_id:token"])
    with pytest.raises(DataError, match=r"exactly one RecBole \.inter"):
        load_recbole_atomic(recbole)
    assert load_recbole_atomic(recbole, name="toy").n_items == 3


# -- sequences ---------------------------------------------------------------------------------
def test_sequences_positions_and_attributes(tmp_path: Path) -> None:
    seq = _write(tmp_path / "s.txt", ["1 5 3 5", "", "2 3", "1 7"])
    (tmp_path / "attrs.json").write_text(json.dumps({"3": [9, 2], "5": [], "8": [1]}))
    ds = load_sequences(seq, tmp_path / "attrs.json")
    assert (len(ds), ds.n_users, ds.n_items, ds.name) == (5, 2, 4, "s")
    assert ds.item_ids.ids == [5, 3, 7, 8]  # first appearance, attribute-only items last
    assert ds.interactions["timestamp"].to_list() == [0.0, 1.0, 2.0, 0.0, 3.0]
    assert _user_history(ds, 1) == [5, 3, 5, 7]
    assert ds.items["tags"].to_list() == [[], ["9", "2"], None, ["1"]]
    assert ds.items["category"].to_list() == [None, "9", None, "1"]


def test_sequences_string_ids(tmp_path: Path) -> None:
    ds = load_sequences(_write(tmp_path / "s.txt", ["ann a b", "bob 07 7"]))
    assert ds.user_ids.ids == ["ann", "bob"] and ds.item_ids.ids == ["a", "b", "07", "7"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{\n\"1\": [1,\n}", "line 3"), ("[1, 2]", "expected a JSON object"),
     ('{"x": [1]}', "item id 'x'"), ('{"1": 3}', "not a list")],
)  # fmt: skip
def test_sequences_bad_attributes(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "a.json").write_text(text)
    with pytest.raises(DataError, match=r"a\.json") as err:
        load_sequences(_write(tmp_path / "s.txt", ["1 1"]), tmp_path / "a.json")
    assert needle in str(err.value)


def test_sequences_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.txt: file not found"):
        load_sequences(tmp_path / "nope.txt")


# -- tables ------------------------------------------------------------------------------------
def test_table_csv_with_side_tables(tmp_path: Path) -> None:
    _write(tmp_path / "log.csv", ["uid,iid,ts,click,w", "1,a,2024-01-01 00:00:10,1,0.5",
                                  "2,b,2024-01-01 00:00:00,0,1.0"])  # fmt: skip
    _write(tmp_path / "items.csv", ["sku,category,tags", "b,toys,x|y", "c,food,"])
    _write(tmp_path / "users.tsv", ["user\tage", "2\t30"])
    mapping = ColumnMapping(user="uid", item="iid", timestamp="ts", feedback=("click",), weight="w")
    with pytest.warns(DataWarning, match=r"1 item id\(s\) in the interactions are not in"):
        ds = load_table(tmp_path / "log.csv", mapping, items=tmp_path / "items.csv",
                        item_key="sku", users=tmp_path / "users.tsv", user_key="user")  # fmt: skip
    assert (len(ds), ds.n_users, ds.n_items, ds.feedback) == (2, 2, 3, ("click",))
    assert ds.item_ids.ids == ["b", "c", "a"] and ds.user_ids.ids == [2, 1]
    assert ds.arrays.timestamp[0] - ds.arrays.timestamp[1] == 10.0
    assert ds.arrays.weight is not None and ds.arrays.weight.tolist() == [0.5, 1.0]
    assert ds.items["tags"].to_list() == [["x", "y"], [], None]
    assert ds.users is not None and ds.users["age"].to_list() == [30, None]


def test_table_parquet_datetime(tmp_path: Path) -> None:
    frame = pl.DataFrame({"u": [1, 2], "i": [3, 4], "t": [0, 86_400_000]})
    frame.with_columns(pl.col("t").cast(pl.Datetime("ms"))).write_parquet(tmp_path / "x.parquet")
    ds = load_table(tmp_path / "x.parquet", ColumnMapping(user="u", item="i", timestamp="t"))
    assert ds.arrays.timestamp.tolist() == [0.0, 86_400.0]


@pytest.mark.parametrize(
    ("lines", "mapping", "needles"),
    [
        (["u,i,r", "1,2,3", "1,3,x"], ColumnMapping("u", "i", feedback=("r",)), ["line 3", "'r'"]),
        (["u,i", "1,2", "1,2,3"], ColumnMapping("u", "i"), ["line 3", "cannot read"]),
        (["u,i", "1,2", ",3"], ColumnMapping("u", "i"), ["line 3", "'u'", "missing id"]),
        (["u,i", "1,2"], ColumnMapping("user", "i"), ["missing column(s) ['user']"]),
        (["u,i,t", "1,2,2024-01-01", "1,2,later"], ColumnMapping("u", "i", "t"), ["line 3", "'t'"]),
    ],
)
def test_table_malformed(
    tmp_path: Path, lines: list[str], mapping: ColumnMapping, needles: list[str]
) -> None:
    with pytest.raises(DataError, match=r"log\.csv") as err:
        load_table(_write(tmp_path / "log.csv", lines), mapping)
    for needle in needles:
        assert needle in str(err.value)


def test_table_unsupported_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported table format"):
        load_table(_write(tmp_path / "log.xlsx", ["u,i"]), ColumnMapping("u", "i"))


# -- dispatcher --------------------------------------------------------------------------------
def test_load_dataset_detects_formats(ml100k: Path, tmp_path: Path) -> None:
    assert load_dataset(str(ml100k)).name == "ml-100k"
    assert load_dataset(ml100k / "u.data").name == "ml-100k"
    seq_dir = tmp_path / "beauty-seq"
    seq_dir.mkdir()
    _write(seq_dir / "B.txt", ["1 1 2"])
    (seq_dir / "B_item2attributes.json").write_text('{"1": [4]}')
    _write(seq_dir / "notes.txt", ["hello"])
    ds = load_dataset(seq_dir)
    assert ds.name == "beauty-seq" and ds.items["category"].to_list() == ["4", None]
    assert load_dataset(seq_dir / "B.txt").items["tags"][0].to_list() == ["4"]


def test_load_dataset_recbole_ml1m_and_table(recbole: Path, ml1m: Path) -> None:
    assert load_dataset(recbole).name == "toy"
    assert load_dataset(recbole / "toy.inter").name == "toy"
    assert load_dataset(ml1m).name == "ml-1m"
    _write(ml1m / "log.csv", ["u,i", "1,2"])
    with pytest.raises(DataError, match="column mapping"):
        load_dataset(ml1m / "log.csv")
    assert len(load_dataset(ml1m / "log.csv", mapping=ColumnMapping("u", "i"))) == 1


def test_load_dataset_unknown(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(DataError, match="unknown dataset folder"):
        load_dataset(tmp_path)


def test_load_dataset_synthetic_hook(monkeypatch: pytest.MonkeyPatch, ml1m: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("funnelrec.data.synthetic")

    def generate(**kwargs: Any) -> Dataset:
        calls.append(kwargs)
        return load_movielens_1m(ml1m)

    fake.generate = generate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "funnelrec.data.synthetic", fake)
    assert load_dataset("synthetic").name == "ml-1m"
    load_dataset("synthetic:n_users=50,scale=0.5,kind=news", seed=3)
    assert calls == [{}, {"n_users": 50, "scale": 0.5, "kind": "news", "seed": 3}]
    with pytest.raises(DataError, match="want key=value"):
        load_dataset("synthetic:n_users")


# -- real data (skipped when ../shared/data is absent) ----------------------------------------
@pytest.fixture(scope="module")
def real_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


def test_real_ml100k(real_data: Path) -> None:
    for ds in (load_movielens_100k(real_data / "ml-100k"), load_dataset(real_data / "ml-100k")):
        assert (len(ds), ds.n_users, ds.n_items) == (100_000, 943, 1_682)
    assert ds.users is not None and ds.users.height == 943
    assert ds.items["category"].null_count() == 0 and ds.items["year"].null_count() == 1


def test_real_ml100k_recbole(real_data: Path) -> None:
    ds = load_recbole_atomic(real_data / "ml-100k" / "recbole")
    assert (len(ds), ds.n_users, ds.n_items, ds.feedback) == (100_000, 943, 1_682, ("rating",))
    assert ds.kg is not None and ds.kg.height == 91_631
    assert ds.item_entities is not None and ds.item_entities.height == 1_598
    assert ds.items["title"][0] == "Toy Story"


@pytest.mark.perf
def test_perf_real_beauty_loads_under_2s(real_data: Path) -> None:
    start = time.perf_counter()
    load_dataset(real_data / "amazon-beauty-seq")
    assert time.perf_counter() - start < 2.0


def test_real_beauty(real_data: Path) -> None:
    ds = load_dataset(real_data / "amazon-beauty-seq")
    assert (len(ds), ds.n_users, ds.n_items) == (198_502, 22_363, 12_101)
    assert ds.items["tags"].null_count() == 0
    offsets, _, _ = ds.sequences
    assert int(np.diff(offsets).min()) == 5
