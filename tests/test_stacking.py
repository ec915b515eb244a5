"""Out-of-fold stacking: the fit contract, the training lists, LambdaMART in a funnel."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from funnelrec import ragged, stacking
from funnelrec.config import FitConfig, parse_config
from funnelrec.context import FitContext, fit_stage
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.eval.lift import bootstrap_lift
from funnelrec.funnel_features import FunnelFeatures
from funnelrec.pipeline import Funnel
from funnelrec.recall.popular import PopularRecall
from funnelrec.stage import Params, Stage

RECALL = {
    "total": 60,
    "channels": [
        {"name": "itemcf", "share": 0.6, "weight": 2.0},
        {"name": "popular", "share": 0.4},
    ],
}
LAMBDAMART = {"n_estimators": 20, "min_data_in_leaf": 5, "threads": 1}
CONFIG: dict[str, Any] = {
    "k": 10,
    "fit": {"folds": 2, "max_neg": 20},
    "recall": RECALL,
    "prerank": {"keep": 60},
    "rank": {"name": "lambdamart", "keep": 30, "params": LAMBDAMART},
}


def test_stage_is_abstract_and_old_fit_signatures_are_tolerated(world: Dataset) -> None:
    class NoFit(Stage[Params]):
        pass

    with pytest.raises(TypeError):
        NoFit()  # type: ignore[abstract]

    class OldStyle(Stage[Params]):
        def fit(self, dataset: Dataset) -> Self:  # type: ignore[override]
            self.n_ = dataset.n_items
            return self

    assert fit_stage(OldStyle(), world, FitContext()).n_ == world.n_items
    assert fit_stage(PopularRecall(), world, FitContext()).is_fitted


def test_inner_dataset_drops_each_users_last_items(world: Dataset) -> None:
    inner, users, pos = stacking.inner_dataset(world, 2)
    lens = ragged.lengths(world.sequences[0])
    inner_lens = ragged.lengths(inner.sequences[0])
    np.testing.assert_array_equal(users, np.flatnonzero(lens > 2))
    np.testing.assert_array_equal(pos, lens[users] - 2)
    np.testing.assert_array_equal(inner_lens[users], lens[users] - 2)
    short = lens <= 2
    np.testing.assert_array_equal(inner_lens[short], lens[short])
    # the kept items are each user's first ones, in time order
    u, i_off, w_off = int(users[0]), inner.sequences[0], world.sequences[0]
    kept = inner.sequences[1][i_off[u] : i_off[u + 1]]
    np.testing.assert_array_equal(kept, world.sequences[1][w_off[u] : w_off[u] + pos[0]])


def test_oof_lists_come_from_channels_that_never_saw_the_labels(world_split: Split) -> None:
    cfg = parse_config(CONFIG)
    log: dict[str, Any] = {}
    ex = stacking.oof_examples(world_split.train, cfg.recall, cfg.fit, 0, log)
    assert [f["queries"] for f in log["folds"]] == [ex.query.batch_size // 2] * 2
    # every positive is the item right after its query's history, in the user's sequence
    rows = ex.candidates.row_ids()[ex.labels > 0]
    seq_off, seq_items, _ = world_split.train.sequences
    users = ex.query.user_idx[rows]
    cut = ragged.lengths(ex.query.history_offsets)[rows]
    np.testing.assert_array_equal(
        ex.candidates.item_idx[ex.labels > 0], seq_items[seq_off[users] + cut]
    )
    # channel evidence is attached to every list
    assert {"ch:itemcf", "ch:popular", "recall"} <= set(ex.candidates.stage_scores)


def test_annotate_copies_each_channels_own_score(world_split: Split) -> None:
    funnel = Funnel(parse_config({**CONFIG, "rank": {"keep": 30}})).fit(world_split.train)
    query = world_split.test_query(world_split.test_users()[:30], 10)
    per_channel = funnel.retrieve_channels(query)
    merged = funnel.recall(query)
    own = per_channel["itemcf"]
    for b in range(3):
        items, scores = own.row(b)
        lookup = dict(zip(items.tolist(), scores.tolist(), strict=True))
        m_items = merged.row(b)[0]
        got = merged.stage_scores["ch:itemcf"][merged.offsets[b] : merged.offsets[b + 1]]
        want = [lookup.get(i, 0.0) for i in m_items.tolist()]
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("mode", ["oof", "in-sample"])
def test_lambdamart_funnel_fits_saves_and_loads(
    world_split: Split, tmp_path: Path, mode: str
) -> None:
    cfg = parse_config({**CONFIG, "fit": {**CONFIG["fit"], "stacking": mode}})
    funnel = Funnel(cfg).fit(world_split.train, valid=world_split.valid)
    assert funnel.fit_log_["stacking"] == mode
    log = funnel.ranker.fit_log_
    assert log["stacking"] == mode and 1 <= log["best_iteration"] <= log["rounds_trained"] <= 20
    assert funnel.ranker.model_.num_trees() == log["best_iteration"]  # cut to the best round
    assert log["valid_ndcg_smoothed"] is not None
    assert set(log["importance"]) == set(funnel.ranker.features_.names)
    query = world_split.test_query(world_split.test_users()[:50], 10)
    before = funnel.recommend(query)
    funnel.save(tmp_path / "f")
    assert (tmp_path / "f" / "rank" / "model.txt").read_text().startswith("tree")
    again = Funnel.load(tmp_path / "f").recommend(query)
    np.testing.assert_array_equal(again.item_idx, before.item_idx)


def test_fit_config_rejects_unknown_stacking() -> None:
    with pytest.raises(ValueError):
        FitConfig.model_validate({"stacking": "leaky"})


def test_bootstrap_lift_known_answers() -> None:
    b = np.linspace(0.0, 1.0, 200)
    lift = bootstrap_lift(b + 0.1, b)
    assert lift.diff == pytest.approx(0.1) and lift.lo == pytest.approx(0.1)
    assert lift.hi == pytest.approx(0.1)
    noisy = bootstrap_lift(b, b[::-1])
    assert noisy.lo < 0 < noisy.hi and noisy.diff == pytest.approx(0.0)


def test_channels_that_score_any_item_give_full_scores_without_vectors(
    world_split: Split,
) -> None:
    funnel = Funnel(parse_config({**CONFIG, "rank": {"keep": 30}})).fit(world_split.train)
    query = world_split.test_query(world_split.test_users()[:30], 10)
    merged = funnel.recall(query)
    full, own = merged.stage_scores["cs:itemcf"], merged.stage_scores["ch:itemcf"]
    found = own != 0
    np.testing.assert_allclose(full[found], own[found], rtol=1e-5)
    assert (full[~found] > 0).any()  # items the channel scores but left to the other channel
    assert "sim_max:itemcf" not in merged.stage_scores  # item-CF has no item vectors
    names = FunnelFeatures().fit(world_split.train, merged).names
    assert "full_score:itemcf" in names and "sim_max:itemcf" not in names


def test_fit_memo_reuses_channels_and_lists_and_changes_no_answer(world_split: Split) -> None:
    """Funnels fitted through one ``FitMemo`` share fitted channels and out-of-fold lists
    where their configs agree, refit what differs, and answer exactly as fresh fits."""
    from funnelrec.train.examples import prefix_queries

    train = world_split.train
    memo = stacking.FitMemo()
    first = Funnel(parse_config(CONFIG), memo=memo).fit(train, valid=world_split.valid)
    hits = memo.hits
    ranker_only = {**CONFIG, "rank": {**CONFIG["rank"], "params": {**LAMBDAMART, "num_leaves": 7}}}
    second = Funnel(parse_config(ranker_only), memo=memo).fit(train, valid=world_split.valid)
    assert memo.hits - hits == 1 + 2 + 1  # the oof lists, both serving channels, valid lists
    assert second.channels["itemcf"] is first.channels["itemcf"]
    other = {**CONFIG, "recall": {**RECALL, "channels": [
        {"name": "itemcf", "share": 0.6, "weight": 2.0, "params": {"alpha": 0.5}},
        {"name": "popular", "share": 0.4},
    ]}}  # fmt: skip
    third = Funnel(parse_config(other), memo=memo).fit(train)
    assert third.channels["itemcf"] is not first.channels["itemcf"]
    assert third.channels["popular"] is first.channels["popular"]
    fresh = Funnel(parse_config(ranker_only)).fit(train, valid=world_split.valid)
    users = np.arange(50)
    lens = ragged.lengths(train.sequences[0])
    query = prefix_queries(train, users, lens[users])
    a, b = second.recommend(query), fresh.recommend(query)
    np.testing.assert_array_equal(a.item_idx, b.item_idx)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_dataset_fingerprint_follows_the_interactions(world: Dataset) -> None:
    import polars as pl

    same = world.with_interactions(world.interactions.clone())
    assert same.fingerprint == world.fingerprint
    moved = world.interactions.with_columns(
        item_idx=pl.when(pl.int_range(pl.len()) == 0)
        .then((pl.col("item_idx") + 1) % world.n_items)
        .otherwise(pl.col("item_idx"))
    )
    assert world.with_interactions(moved).fingerprint != world.fingerprint


def test_oof_lists_hold_seen_items_when_the_funnel_serves_them() -> None:
    """With ``exclude_seen = false`` (repeat consumption) the training lists are retrieved
    as served: the user's own items may be candidates (and positives); with the default they
    never are."""
    import polars as pl

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(60), 20)
    frame = pl.DataFrame(
        {"user_id": users, "item_id": rng.integers(0, 12, len(users)),
         "timestamp": np.arange(len(users), dtype=np.float64)}
    )  # fmt: skip
    data = Dataset.from_frame(frame)
    raw = {**CONFIG, "exclude_seen": False, "rerank": [], "recall": {"total": 10, "channels": [
        {"name": "repeat", "share": 0.5}, {"name": "popular", "share": 0.5}]}}  # fmt: skip
    cfg = parse_config(raw)

    def seen_share(exclude_seen: bool) -> tuple[float, float]:
        ex = stacking.oof_examples(data, cfg.recall, cfg.fit, 0, {}, None, exclude_seen)
        q, c = ex.query, ex.candidates
        seen = ragged.membership(c.offsets, c.item_idx, q.history_offsets, q.history_items)
        return float(seen.mean()), float(ex.labels[seen].sum())

    served, positives = seen_share(False)
    assert served > 0.5 and positives > 0  # repeats are retrieved, and some are the next item
    assert seen_share(True)[0] == 0.0
    funnel = Funnel(cfg).fit(data)  # the funnel trains its ranker on the served kind of list
    assert funnel.fit_log_["folds"][0]["recall_hit_rate"] > 0.5
