"""Guarded refit: a worse candidate is rejected by the holdout check; an accepted one is hot-
swapped under closed-loop load (50 clients) with no failed request."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from funnelrec.config import parse_config
from funnelrec.errors import ConfigError
from funnelrec.loop.data import load_store_dataset
from funnelrec.loop.refit import RefitPlan, before, holdout_cut, parse_duration, refit_once
from funnelrec.loop.simulate import serving
from funnelrec.pipeline import Funnel
from funnelrec.serve.store.base import open_store
from tests.loop.conftest import config_dict, write_config

CHANNELS = ("itemcf", "popular")


@pytest.fixture(scope="module")
def serving_dir(world_store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serving model: fitted on the first 80% of the store's events."""
    ds = load_store_dataset(world_store)
    path = tmp_path_factory.mktemp("refit") / "serving"
    past = before(ds, holdout_cut(ds, 0.2))
    Funnel(parse_config(config_dict(CHANNELS))).fit(past).save(path)
    return path


def copy_store(world_store: str, tmp_path: Path) -> str:
    """A writable copy of the world store (decisions are published into it)."""
    src = open_store(world_store)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    dst = open_store(url)
    dst.append_events(src.events())
    src.close()
    dst.close()
    return url


def test_durations() -> None:
    assert [parse_duration(t) for t in ("45s", "30m", "6h", "1d", "90")] == [
        45,
        1800,
        21600,
        86400,
        90,
    ]
    with pytest.raises(ConfigError, match="'6x'"):
        parse_duration("6x")


def test_a_worse_candidate_is_rejected(world_store: str, serving_dir: Path, tmp_path: Path) -> None:
    store = copy_store(world_store, tmp_path)
    plan = RefitPlan(
        config=write_config(tmp_path / "worse.yaml", ("popular",)),  # no personal channel
        data=(store,),
        serving=serving_dir,
        out=tmp_path / "refits",
        store=store,
        final_fit=False,
        nice=0,  # (the child's priority matters under serving load: the next test)
    )
    decision = refit_once(plan)
    assert not decision.accepted and decision.artifacts is None
    assert decision.candidate_recall < decision.serving_recall * (1 - plan.margin)
    assert decision.holdout_users > 0
    opened = open_store(store)
    assert opened.published("refit:rejected")[0] == 1
    assert opened.published("artifacts") == (0, None)  # nothing swapped
    opened.close()
    [line] = (tmp_path / "refits" / "decisions.jsonl").read_text().splitlines()
    assert json.loads(line)["accepted"] is False


def test_accepted_refit_hot_swaps_under_load(
    world_store: str, serving_dir: Path, tmp_path: Path
) -> None:
    store = copy_store(world_store, tmp_path)
    plan = RefitPlan(
        config=write_config(tmp_path / "same.yaml", CHANNELS),
        data=(store,),
        serving=serving_dir,
        out=tmp_path / "refits",
        store=store,
        final_fit=False,
    )
    stats: Counter[str] = Counter()
    stop = threading.Event()

    async def clients(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as c:

            async def one(n: int) -> None:
                while not stop.is_set():
                    try:
                        r = await c.get("/recommend", params={"user_id": f"u{n % 300:04d}"})
                        stats["ok" if r.status_code == 200 else f"http {r.status_code}"] += 1
                        stats[f"gen{r.json()['generation']}"] += 1
                    except httpx.HTTPError as exc:
                        stats[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)  # think time: leaves a core to the refit

            await asyncio.gather(*(one(n) for n in range(50)))

    with serving(artifacts=serving_dir, store=store, sync_interval_s=0.1) as url:
        load = threading.Thread(target=lambda: asyncio.run(clients(url)))
        load.start()
        try:
            decision = refit_once(plan)  # fits in a child process meanwhile
            assert decision.accepted, decision.reason
            deadline = 200
            while httpx.get(f"{url}/health").json()["generation"] < 2 and deadline:
                threading.Event().wait(0.05)
                deadline -= 1
        finally:
            threading.Event().wait(0.5)
            stop.set()
            load.join(timeout=60)
        health = httpx.get(f"{url}/health").json()
    assert decision.artifacts is not None
    assert health["generation"] == 2 and health["artifacts"] == Path(decision.artifacts).name
    failures = {k: v for k, v in stats.items() if k != "ok" and not k.startswith("gen")}
    assert failures == {} and stats["ok"] > 50
    assert stats["gen1"] > 0 and stats["gen2"] > 0  # served before and after the swap
