"""Server settings: pydantic-settings with the ``FUNNELREC_`` env prefix and an optional
TOML/YAML/JSON file (``FUNNELREC_SETTINGS_FILE`` or ``--settings``).

Precedence: explicit overrides (CLI flags) > environment > file > defaults. Unknown keys in
the file are an error naming the key. Tokens are ``SecretStr`` (hidden from repr and logs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from funnelrec.errors import ConfigError
from funnelrec.io import read_mapping_file
from funnelrec.serve.store.base import HISTORY_CAP
from funnelrec.threads import resolve_threads

ENV_PREFIX = "FUNNELREC_"
Token = SecretStr | None


class Settings(BaseSettings):
    """Everything the server needs; see the README's "Serving" section.

    Attributes:
        artifacts: funnel artifact directory (``Funnel.save``); ``/admin/reload`` re-reads it.
        store: ``sqlite:///rel.db`` / ``sqlite:////abs.db`` / ``redis://host:port/db``.
        admin_token: bearer token of ``/admin/*`` (admin routes answer 403 when unset).
        api_token: when set, the public routes need it too (``/health``, ``/metrics`` never).
        catalogue_token: bearer token of ``PUT /items`` (catalogue writes); when unset the
            admin token is needed (and with neither, catalogue writes are refused: 403).
        max_body_bytes, max_events, max_items: request limits (HTTP 413 past them).
        max_k: largest slate size a request may ask for.
        history_limit: a user's latest store events added to the query's history (at most
            ``HISTORY_CAP``, the history every store keeps per user).
        max_future_s: event timestamps later than now + this are rejected.
        clock: request time of a query: ``wall`` (server clock) or ``data`` (the latest
            timestamp of the funnel's data; for replaying old logs).
        batch_max, batch_wait_ms: concurrent ``/recommend`` requests are run through the
            funnel together, up to ``batch_max`` per batch; under load (the previous batch held
            more than one request) the batcher waits ``batch_wait_ms`` for more to join, an
            idle server never waits (``serve/microbatch.py``).
        similar_channel: registered name of the recall channel used by ``/similar``.
        sync_interval_s: how often this process checks the store for reloads and item
            upserts made through other processes sharing it (``0``: never; see serve/sync.py).
        log_impressions, impression_flush_ms: log every response's items (batched writes).
        online_counters, online_apply_s, online_half_life_s: popularity and item-CF counts
            updated from ``/events`` every ``online_apply_s`` (serve/online.py).
        candidate, share, interleave, rollout_salt: a second artifact for a stable
            ``share`` of users (hash of the user id), or team-drafted with the current one
            when ``interleave`` (serve/rollout.py).
        refit_every_s, refit_config, refit_data, refit_out, refit_margin: scheduled refit
            in a low-priority child process, swapped in only if its holdout recall is not
            worse than the serving model's by more than ``refit_margin`` (relative).
        threads: torch, BLAS and Faiss threads of each serving process (``serve --threads``,
            env ``FUNNELREC_THREADS``). Unset: the machine's CPUs divided among the
            ``serve --workers`` processes, less one each for the process's event loop (at
            least 1), so workers never oversubscribe the cores (``server_threads``). The
            artifact's own ``threads`` (the fitting machine's) does not apply.
        balance: how ``serve --workers N`` shares connections among the workers:
            ``round_robin`` (one process accepts and deals them in turn, serve/balancer.py)
            or ``kernel`` (uvicorn's workers on one shared listening socket, whichever
            accepts first; also where sockets cannot be passed, e.g. Windows).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    artifacts: Path
    store: str = "sqlite:///funnelrec-store.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    admin_token: Token = Field(default=None, min_length=16)
    api_token: Token = Field(default=None, min_length=16)
    catalogue_token: Token = Field(default=None, min_length=16)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_events: int = Field(default=1000, ge=1)
    max_items: int = Field(default=1000, ge=1)
    max_k: int = Field(default=200, ge=1)
    recommend_fast_path: bool = True
    history_limit: int = Field(default=200, ge=0, le=HISTORY_CAP)
    max_future_s: float = Field(default=300.0, ge=0)
    clock: Literal["wall", "data"] = "wall"
    batch_max: int = Field(default=64, ge=1)
    batch_wait_ms: float = Field(default=1.0, ge=0, le=100)
    similar_channel: str = "itemcf"
    redis_prefix: str = "funnelrec"
    sync_interval_s: float = Field(default=1.0, ge=0)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # the loop (serve/loop.py): impression log, online counters, rollout, scheduled refit
    log_impressions: bool = True
    impression_flush_ms: float = Field(default=250.0, gt=0)
    online_counters: bool = True
    online_apply_s: float = Field(default=0.5, gt=0)
    online_half_life_s: float = Field(default=86_400.0, gt=0)
    candidate: Path | None = None
    share: float = Field(default=0.1, ge=0, le=1)
    interleave: bool = False
    rollout_salt: str = "funnelrec"
    refit_every_s: float = Field(default=0.0, ge=0)
    refit_config: Path | None = None
    refit_data: list[str] = Field(default_factory=list)
    refit_out: Path | None = None
    refit_margin: float = Field(default=0.02, ge=0, le=1)
    threads: int | None = Field(default=None, ge=1)
    balance: Literal["round_robin", "kernel"] = "round_robin"

    @field_validator("threads", mode="before")
    @classmethod
    def _unset_threads(cls, value: Any) -> Any:
        """An empty ``FUNNELREC_THREADS`` means unset, as everywhere else."""
        return None if value == "" else value


def load_settings(file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults < ``file`` < environment < ``overrides`` (``None`` = not given)."""
    values: dict[str, Any] = {}
    file = file or os.environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
    if file:
        env = {k.upper() for k in os.environ}
        values = {
            k: v for k, v in _read_file(Path(file)).items() if f"{ENV_PREFIX}{k}".upper() not in env
        }
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(f"serve settings: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    """One part per error, naming the key; values of token fields are never echoed."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        elif "token" in loc and err["type"] == "too_short":  # a SecretStr's length: characters
            parts.append(f"{loc!r}: must be at least {err['ctx']['min_length']} characters")
        elif "token" in loc:
            parts.append(f"{loc!r}: {err['msg']}")
        else:
            parts.append(f"{loc!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def _read_file(path: Path) -> dict[str, Any]:
    return read_mapping_file(path, "settings")


def server_threads(settings: Settings, workers: int = 1) -> int:
    """Thread-pool size of each of ``workers`` serving processes: ``settings.threads``, else
    the CPUs (``funnelrec.threads.resolve_threads``) divided among the workers less one
    each, at least 1. The one is the worker's event loop: under load it parses requests and
    writes responses while the funnel thread computes, so a pool as large as the worker's
    share of the cores oversubscribed them (one worker on 2 cores: 2 pool threads beside
    the loop cost more CPU per request and a higher p99 than 1; docs/guide/scaling.md)."""
    if settings.threads is not None:
        return settings.threads
    return max(1, resolve_threads() // workers - 1)
