"""Knowledge graph: KGCN loader, split622, TransE/RotatE, KG expansion, explainable meta-paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders import load_dataset, load_kgcn
from funnelrec.data.splits import split
from funnelrec.errors import ConfigError, DataError
from funnelrec.models.transe import RotatE, TransE
from funnelrec.pipeline import Funnel
from funnelrec.recall._kg import KnowledgeGraph
from funnelrec.recall.kg_expand import KGExpandRecall
from funnelrec.recall.metapath import MetaPathRecall
from funnelrec.types import Query


def write_kgcn(root: Path) -> Path:
    """A KGCN-format folder: 3 users, 5 artists (4 in the KG), 2 genres + 1 city."""
    (root / "hetrec2011-lastfm-2k").mkdir(parents=True)
    (root / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n1\t10\t5\n1\t11\t3\n2\t12\t7\n2\t99\t1\n3\t13\t2\n"
    )
    (root / "item_index2entity_id.txt").write_text("10\t0\n11\t1\n12\t2\n13\t3\n")
    (root / "kg.txt").write_text(
        "0\tmusic.artist.genre\t100\r\n1\tmusic.artist.genre\t100\r\n"
        "2\tmusic.artist.genre\t101\r\n3\tmusic.artist.genre\t101\r\n"
        "0\tmusic.artist.origin\t200\r\n2\tmusic.artist.origin\t200\r\n"
    )
    (root / "hetrec2011-lastfm-2k" / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n10\tAlpha\tu\tp\n11\tBeta\tu\tp\n12\tGamma\tu\tp\n"
        "13\tDelta\tu\tp\n99\tNoKG\tu\tp\n"
    )
    return root


def test_kgcn_loader_reads_all_files(tmp_path: Path) -> None:
    ds = load_dataset(write_kgcn(tmp_path / "lastfm"))
    assert (ds.n_users, ds.n_items, len(ds)) == (3, 5, 5)
    assert ds.kg is not None and ds.kg.height == 6
    assert ds.item_entities is not None and ds.item_entities.height == 4
    assert ds.items["title"].to_list()[:2] == ["Alpha", "Beta"]
    assert ds.feedback == ("plays",)
    only = load_kgcn(tmp_path / "lastfm", kg_items_only=True)
    assert len(only) == 4 and 99 not in only.item_ids


def test_kgcn_loader_names_the_bad_line(tmp_path: Path) -> None:
    root = write_kgcn(tmp_path / "bad")
    (root / "kg.txt").write_text("0\tmusic.artist.genre\t100\n1\tmusic.artist.genre\n")
    with pytest.raises(DataError, match=r"kg\.txt: line 2"):
        load_kgcn(root)


def test_knowledge_graph_codes(tmp_path: Path) -> None:
    ds = load_kgcn(write_kgcn(tmp_path / "lastfm"))
    graph = KnowledgeGraph.from_dataset(ds)
    assert graph.n_entities == 7 and graph.n_relations == 2
    alpha = ds.item_ids.index(10)
    assert graph.entity_item[graph.item_entity[alpha]] == alpha
    assert graph.item_entity[ds.item_ids.index(99)] == -1
    with pytest.raises(ConfigError, match="no knowledge graph"):
        KnowledgeGraph.from_dataset(ds.replace(kg=None))


def test_split622_is_a_seeded_global_60_20_20(world: Dataset) -> None:
    a, b = split(world, "split622", seed=2024), split(world, "split622", seed=2024)
    n = len(world)
    assert (len(a.train), len(a.valid), len(a.test)) == (
        round(0.6 * n), round(0.2 * n), n - round(0.6 * n) - round(0.2 * n),
    )  # fmt: skip
    assert a.test.interactions.equals(b.test.interactions)
    c = split(world, "split622", seed=1)
    assert not a.test.interactions.equals(c.test.interactions)
    whole = pl.concat([p.interactions for p in (a.train, a.valid, a.test)])
    assert whole.sort(whole.columns).equals(world.interactions.sort(whole.columns))


def test_transe_and_rotate_score_known_answers() -> None:
    trans = TransE(3, 1, 2)
    with torch.no_grad():
        trans.entity.weight[:] = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
        trans.relation.weight[:] = torch.tensor([[1.0, 1.0]])
    h, r = torch.tensor([0]), torch.tensor([0])
    assert trans.score(h, r, torch.tensor([1])).item() == 0.0  # h + r == t
    assert trans.score(h, r, torch.tensor([2])).item() == -32.0
    rot = RotatE(2, 1, 1)
    with torch.no_grad():
        rot.entity.weight[:] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # 1 and i
        rot.phase.weight[:] = torch.tensor([[np.pi / 2]])  # multiply by i
    assert abs(rot.score(torch.tensor([0]), r, torch.tensor([1])).item()) < 1e-10
    many = rot.score(torch.tensor([0]), r, torch.tensor([[1, 0]]))
    assert many.shape == (1, 2) and many[0, 1].item() == pytest.approx(-2.0)


def genre_world() -> Dataset:
    """20 items in two genres (KG only); users each listen within one genre."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(60):
        genre = u % 2
        picks = rng.choice(10, 4, replace=False) + 10 * genre
        users += [f"u{u}"] * 4
        items += [f"i{i}" for i in picks]
    frame = pl.DataFrame({"user_id": users, "item_id": items})
    ds = Dataset.from_frame(frame, time_col=None)
    ids = [str(i) for i in ds.item_ids.ids]
    kg = pl.DataFrame(
        {
            "head": [f"e:{i}" for i in ids],
            "relation": ["has_genre"] * len(ids),
            "tail": [f"genre{int(i[1:]) // 10}" for i in ids],
        }
    )
    links = pl.DataFrame({"item_idx": np.arange(len(ids)), "entity": [f"e:{i}" for i in ids]})
    titles = pl.DataFrame({"item_idx": np.arange(len(ids)), "title": [f"Song {i}" for i in ids]})
    return ds.replace(kg=kg, item_entities=links, items=titles)


@pytest.mark.parametrize("model", ["transe", "rotate"])
def test_kg_expansion_reaches_items_of_the_same_entity(model: str) -> None:
    ds = genre_world()
    channel = KGExpandRecall(
        model=model, dim=8, epochs=40, interactions=False, blend=0.0, batch_size=64,
        lr=0.05, threads=1,
    ).fit(ds)  # fmt: skip
    genre = np.asarray([int(str(i)[1:]) // 10 for i in ds.item_ids.ids])
    hist = [np.flatnonzero(genre == 0)[:3].tolist(), np.flatnonzero(genre == 1)[:3].tolist()]
    found = channel.retrieve(Query.from_lists([-1, -1], hist, k=5, exclude=hist), 5)
    for row, g in enumerate((0, 1)):
        items, _ = found.row(row)
        assert len(items) == 5 and np.mean(genre[items] == g) >= 0.8


def test_kg_expansion_with_interactions_serves_known_users(world: Dataset) -> None:
    channel = KGExpandRecall(dim=16, epochs=3, threads=1).fit(world)
    q = world.query(np.array([0, 1]), 10)
    out = channel.retrieve(q, 10)
    assert out.lengths().tolist() == [10, 10]
    scores = channel.score_pairs(q, out.dense(10)[:, 0])
    assert np.all(np.isfinite(scores))


def test_metapath_scores_count_shared_entities_and_explain_them(tmp_path: Path) -> None:
    ds = load_kgcn(write_kgcn(tmp_path / "lastfm"))
    channel = MetaPathRecall(hub_penalty=0.0).fit(ds)
    alpha, beta, gamma = (ds.item_ids.index(i) for i in (10, 11, 12))
    out = channel.retrieve(Query.from_lists([-1], [[alpha]], k=5, exclude=[[alpha]]), 5)
    items, scores = out.row(0)
    assert items.tolist() == [beta, gamma] or items.tolist() == [gamma, beta]
    got = dict(zip(items.tolist(), scores.tolist(), strict=True))
    assert got[beta] == pytest.approx(1.0, abs=1e-3)  # one shared genre
    assert got[gamma] == pytest.approx(1.0, abs=1e-3)  # one shared origin
    assert out.reasons is not None
    reason = dict(zip(items.tolist(), out.reasons.tolist(), strict=True))
    assert reason[beta] == 'because you liked "Alpha": both music.artist.genre 100'
    assert reason[gamma] == 'because you liked "Alpha": both music.artist.origin 200'
    empty = channel.retrieve(Query.from_lists([-1], [[]], k=5), 5)
    assert empty.lengths().tolist() == [0]


def test_every_metapath_candidate_in_the_trace_has_a_named_reason(world: Dataset) -> None:
    raw = {
        "k": 5,
        "recall": {"channels": [{"name": "metapath", "quota": 30}, {"name": "popular"}]},
    }
    funnel = Funnel(parse_config(raw)).fit(world)
    titles = set(world.items["title"].to_list())
    relations = set(world.kg["relation"].to_list()) if world.kg is not None else set()
    query = world.query(np.arange(5), 5)
    trace = funnel.run(query)
    for row in range(5):
        info = trace.explain(row, world.item_ids)
        channel = info["channels"]["metapath"]
        assert channel, "meta-path found nothing"
        for entry in channel:
            text = entry["reason"]
            assert text.startswith('because you liked "')
            assert text.split('"')[1] in titles
            assert any(rel in text for rel in relations | {"is"})
        merged = [e for e in info["merged"] if "metapath" in e["found_by"]]
        assert merged and all("reason" in e for e in merged)
        assert all(e["reason"] for e in info["slate"] if "metapath" in e.get("channels", []))


def test_lastfm_kg_counts_match_kgcn(shared_data: Path) -> None:
    ds = load_kgcn(shared_data / "lastfm-kg", kg_items_only=True)
    assert (len(ds), ds.n_users, ds.n_items) == (21_173, 1_872, 3_846)
    assert ds.kg is not None and ds.kg.height == 15_518


@pytest.mark.parametrize("name", ["ml-100k-graph.toml", "lastfm-kg.toml"])
def test_graph_configs_are_valid(name: str) -> None:
    from funnelrec.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    names = {c.name for c in config.recall.channels}
    assert {"lightgcn", "metapath"} <= names
