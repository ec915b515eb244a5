"""YouTube-DNN recall: user vectors come from the query's history."""

from __future__ import annotations

from typing import Any

import pytest

from funnelrec.data.splits import Split
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.popular import PopularRecall
from funnelrec.recall.youtube_dnn import YoutubeDNNRecall
from funnelrec.types import Query


@pytest.fixture(scope="module")
def ytdnn(world_split: Split) -> YoutubeDNNRecall:
    params: dict[str, Any] = {
        "lr": 0.005,
        "recent": 1,
        "max_history": 20,
        "epochs": 10,
        "threads": 1,
    }
    return YoutubeDNNRecall(**params).fit(world_split.train)


def test_beats_popular(world_split: Split, ytdnn: YoutubeDNNRecall) -> None:
    def ndcg(channel: object) -> float:
        rec = evaluate(lambda q: channel.retrieve(q, q.k), world_split, ks=(10,))  # type: ignore[attr-defined]
        return rec.metrics["ndcg@10"]

    assert ndcg(ytdnn) > ndcg(PopularRecall().fit(world_split.train))


def test_history_drives_the_vector(ytdnn: YoutubeDNNRecall) -> None:
    hist = [[3, 4, 5], [3, 4, 5], [3, 4, 5], [40, 41], [], [10**6]]
    q = Query.from_lists([-1, -1, 0, 0, -1, -1], hist, k=8)
    rows = ytdnn.retrieve(q, 8).to_lists()
    assert rows[0] == rows[1] and len(rows[0]) == 8  # unknown users: history alone
    assert rows[2] != rows[0]  # a known user's attributes count too
    assert rows[2] != rows[3]  # and so do new events
    assert rows[4] == [] and rows[5] == []  # no (known) history, no user: empty
