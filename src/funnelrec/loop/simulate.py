"""``funnelrec simulate``: the synthetic world's users click on what the server shows them,
through the real HTTP API on loopback, and (for ``refit`` models) the loop retrains.

Per model (a funnel config, ``refit`` on or off) and round ``r``:

1. ``GET /recommend`` for a sample of users (the same users for every model in a round: common
   random numbers), at the simulation clock;
2. each shown item is clicked with the world's ground-truth probability (``world.py``:
   interest match x item quality x position bias); clicks go to ``POST /events`` with the
   response's ``request_id``; the server logs the impressions itself;
3. ``refit`` models: one guarded refit round (``refit.py``) on the base data plus the store;
   an accepted model is swapped in with ``POST /admin/reload``.

CTR (clicks / impressions) per round and per slate position is reported for every model.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from funnelrec.config import load_config
from funnelrec.data.loaders import load_dataset
from funnelrec.errors import ConfigError
from funnelrec.io import read_mapping_file
from funnelrec.loop.refit import RefitPlan, refit_once
from funnelrec.loop.world import World
from funnelrec.pipeline import Funnel

ADMIN = "simulate-admin-token-0000"


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: Path
    refit: bool = False
    position_debias: bool = True  # refits train on examined impressions only


class SimConfig(BaseModel):
    """Simulation settings (TOML); model config paths are relative to the settings file."""

    model_config = ConfigDict(extra="forbid")
    n_users: int = Field(default=600, ge=10)
    n_items: int = Field(default=400, ge=10)
    n_interactions: int = Field(default=15_000, ge=100)
    seed: int = 0
    users_per_round: int = Field(default=300, ge=1)
    k: int = Field(default=10, ge=1)
    click_scale: float = Field(default=2.0, gt=0)
    position_exponent: float = Field(default=1.0, ge=0)
    affinity_floor: float = Field(default=0.1, ge=0, le=1)
    round_hours: float = Field(default=24.0, gt=0)
    holdout_share: float = Field(default=0.1, gt=0, lt=1)
    margin: float = Field(default=0.02, ge=0, le=1)
    final_fit: bool = True
    nice: int = Field(default=0, ge=0, le=19)  # the refit child's niceness (no live traffic here)
    models: dict[str, ModelSpec]

    @property
    def base_spec(self) -> str:
        return (
            f"synthetic:n_users={self.n_users},n_items={self.n_items},"
            f"n_interactions={self.n_interactions},seed={self.seed}"
        )


def load_sim_config(path: Path) -> SimConfig:
    raw = read_mapping_file(path, "simulation settings")
    try:
        cfg = SimConfig(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {loc!r}: {first['msg']}") from None
    for spec in cfg.models.values():
        if not spec.config.is_absolute():
            spec.config = (path.parent / spec.config).resolve()
        if not spec.config.is_file():
            raise ConfigError(f"{path}: model config {spec.config} does not exist")
    return cfg


@dataclass
class ModelRun:
    """One model's simulation: CTR per round and per position, refit decisions."""

    name: str
    ctr: list[float] = field(default_factory=list)
    shown_at: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clicks_at: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decisions: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # process CPU seconds over the same span as ``wall_s``

    def metrics(self) -> dict[str, float]:
        out = {f"ctr_r{r + 1}": round(c, 5) for r, c in enumerate(self.ctr)}
        out["ctr_final"] = round(self.ctr[-1], 5)
        pos = self.clicks_at / np.maximum(self.shown_at, 1)
        out.update({f"ctr_pos{p + 1}": round(float(v), 5) for p, v in enumerate(pos)})
        out["refits_accepted"] = float(sum(d["accepted"] for d in self.decisions))
        return out


@contextmanager
def serving(**settings: Any) -> Iterator[str]:
    """``create_app`` on uvicorn in a thread on a free loopback port; yields its URL."""
    import socket

    from funnelrec.serve import create_app, load_settings

    app = create_app(load_settings(**settings))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("simulation server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def simulate(
    cfg: SimConfig, rounds: int, out: Path, progress: Callable[[str], None] = print
) -> list[ModelRun]:
    """Run every model of ``cfg`` for ``rounds`` rounds (work files under ``out``)."""
    world = World.generate(cfg.n_users, cfg.n_items, cfg.n_interactions, cfg.seed)
    base = load_dataset(cfg.base_spec)
    runs = []
    for name, spec in cfg.models.items():
        start, cpu0 = time.perf_counter(), time.process_time()
        work = out / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        Funnel(load_config(spec.config)).fit(base).save(work / "gen-0")
        run = _run_model(name, spec, cfg, rounds, work, world, base.max_timestamp, progress)
        run.wall_s = time.perf_counter() - start
        run.cpu_s = time.process_time() - cpu0
        runs.append(run)
    return runs


def _run_model(
    name: str,
    spec: ModelSpec,
    cfg: SimConfig,
    rounds: int,
    work: Path,
    world: World,
    t0: float,
    progress: Callable[[str], None],
) -> ModelRun:
    store = f"sqlite:///{work / 'store.db'}"
    run = ModelRun(name, shown_at=np.zeros(cfg.k), clicks_at=np.zeros(cfg.k))
    serving_dir = work / "gen-0"
    settings = dict(artifacts=serving_dir, store=store, admin_token=ADMIN)
    with serving(**settings, impression_flush_ms=20, sync_interval_s=0) as url:
        client = httpx.Client(base_url=url, timeout=60.0)
        for r in range(1, rounds + 1):
            now = t0 + r * cfg.round_hours * 3600
            shown, clicked = _round(client, cfg, world, r, now, run)
            run.ctr.append(clicked / max(shown, 1))
            progress(f"{name} round {r}: CTR {run.ctr[-1]:.4f} ({clicked}/{shown})")
            if spec.refit and r < rounds:
                time.sleep(0.2)  # let the impression log flush (every 20 ms)
                serving_dir = _refit(client, cfg, spec, store, work, serving_dir, run, progress)
        client.close()
    return run


def _round(
    client: httpx.Client, cfg: SimConfig, world: World, r: int, now: float, run: ModelRun
) -> tuple[int, int]:
    """One round of requests and clicks; returns (impressions, clicks)."""
    rng = np.random.default_rng([cfg.seed, r])
    users = rng.choice(cfg.n_users, size=min(cfg.users_per_round, cfg.n_users), replace=False)
    events: list[dict[str, Any]] = []
    shown = 0
    for u in users.tolist():
        uid = world.user_id(u)
        resp = client.get("/recommend", params={"user_id": uid, "k": cfg.k, "now": now})
        resp.raise_for_status()
        body = resp.json()
        items = np.asarray([world.item_index(str(i["item_id"])) for i in body["items"]])
        if len(items) == 0:
            continue
        p = world.click_probability(
            u, items, cfg.click_scale, cfg.position_exponent, cfg.affinity_floor
        )
        hit = rng.random(len(p)) < p
        shown += len(items)
        run.shown_at[: len(items)] += 1
        run.clicks_at[: len(items)] += hit
        for pos in np.flatnonzero(hit).tolist():
            events.append(
                {"user_id": uid, "item_id": body["items"][pos]["item_id"], "type": "click",
                 "timestamp": now, "request_id": body["request_id"]}
            )  # fmt: skip
    for lo in range(0, len(events), 1000):
        client.post("/events", json={"events": events[lo : lo + 1000]}).raise_for_status()
    return shown, len(events)


def _refit(
    client: httpx.Client,
    cfg: SimConfig,
    spec: ModelSpec,
    store: str,
    work: Path,
    serving_dir: Path,
    run: ModelRun,
    progress: Callable[[str], None],
) -> Path:
    plan = RefitPlan(
        config=spec.config,
        data=(cfg.base_spec, store),
        serving=serving_dir,
        out=work / "refits",
        store=store,
        holdout_share=cfg.holdout_share,
        margin=cfg.margin,
        k=cfg.k,
        final_fit=cfg.final_fit,
        nice=cfg.nice,
        examined_only=spec.position_debias,
    )
    decision = refit_once(plan)
    run.decisions.append(vars(decision))
    progress(f"{run.name} refit: {decision.reason}")
    if not decision.accepted or decision.artifacts is None:
        return serving_dir
    headers = {"Authorization": f"Bearer {ADMIN}"}
    resp = client.post("/admin/reload", json={"artifacts": decision.artifacts}, headers=headers)
    resp.raise_for_status()
    return Path(decision.artifacts)
