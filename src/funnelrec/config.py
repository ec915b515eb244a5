"""Typed, validated funnel config (TOML or YAML).

Unknown keys anywhere — in the funnel layout or in a stage's params — are a ``ConfigError``
naming the key. ``resolved`` fills every stage's params with its defaults; the funnel saves
that resolved form beside its artifacts so a run can be reproduced exactly.

Example (TOML)::

    k = 10
    [recall]
    total = 300
    [[recall.channels]]
    name = "popular"
    quota = 100
    params = { half_life_days = 30 }
    [prerank]
    keep = 200
    [rank]
    keep = 50
    [[rerank]]
    name = "seen_filter"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from funnelrec.errors import ConfigError
from funnelrec.io import read_mapping_file
from funnelrec.registry import PRERANK, RANK, RECALL, RERANK, Registry
from funnelrec.stage import describe_validation_error


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(StrictModel):
    """One recall channel: registered ``name``, optional ``alias`` (to use a type twice),
    a ``quota`` (items) or ``share`` of the recall budget, a fusion ``weight`` and params."""

    name: str
    alias: str | None = None
    quota: int | None = Field(default=None, ge=1)
    share: float | None = Field(default=None, gt=0, le=1)
    weight: float = Field(default=1.0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.alias or self.name

    @model_validator(mode="after")
    def _quota_or_share(self) -> ChannelConfig:
        if self.quota is not None and self.share is not None:
            raise ValueError(f"channel {self.id!r}: give quota or share, not both")
        return self


SHARE_SLACK = 1e-3  # shares written with 4 decimals may sum to a little more than 1


class RecallConfig(StrictModel):
    """Recall budget: at most ``total`` merged items per query, split among the channels.

    Budget rule (``quotas``): a channel with a ``quota`` gets that many items; a channel with a
    ``share`` gets ``floor(share · total)`` (at least 1); the channels with neither split what
    is left of ``total`` equally, the first ones in config order taking one more item each
    until nothing is left. A ``ConfigError`` naming the channels is raised when the shares
    sum to more than 1 (beyond a rounding slack of 0.001, which is scaled away), when quotas
    and shares together ask for more than ``total``, or when
    too little is left to give every channel without a quota or share at least one item.

    ``overfetch``: channels return quota × overfetch items so that dedup across channels
    does not eat quotas. ``backfill``: rows short of ``total`` after the quotas take the
    channels' remaining items (best weighted reciprocal rank first); merged rows never hold
    more than ``total`` items."""

    total: int = Field(default=300, ge=1)
    normalisation: Literal["rrf", "minmax", "rank", "none"] = "rrf"
    overfetch: float = Field(default=2.0, ge=1.0)
    backfill: bool = True
    channels: list[ChannelConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> RecallConfig:
        ids = [c.id for c in self.channels]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"channel ids must be unique (use alias): {sorted(dup)}")
        return self

    @model_validator(mode="after")
    def _budget_fits(self) -> RecallConfig:
        self.quotas()  # raises naming the channels when the budget is over-committed
        return self

    def quotas(self) -> dict[str, int]:
        """Items each channel contributes at most (see the budget rule in the class doc)."""
        shared = {c.id: c.share for c in self.channels if c.share is not None}
        share_sum = sum(shared.values())
        if share_sum > 1 + SHARE_SLACK:
            listed = ", ".join(f"{k}={v:g}" for k, v in shared.items())
            raise ValueError(
                f"recall shares sum to {share_sum:g} > 1 ({listed}); "
                "lower them so they sum to at most 1"
            )
        scale = 1 / share_sum if share_sum > 1 else 1.0  # rounding slack (0.3334 x 3) scaled away
        fixed = {c.id: c.quota for c in self.channels if c.quota is not None}
        fixed.update({k: max(int(v * scale * self.total + 1e-9), 1) for k, v in shared.items()})
        fixed = {c.id: fixed[c.id] for c in self.channels if c.id in fixed}  # config order
        if sum(fixed.values()) > self.total:
            listed = ", ".join(f"{k}={v}" for k, v in fixed.items())
            raise ValueError(
                f"recall quotas ask for {sum(fixed.values())} items but total = {self.total} "
                f"({listed}); lower the quotas/shares or raise recall.total"
            )
        free = [c.id for c in self.channels if c.id not in fixed]
        rest = self.total - sum(fixed.values())
        if free and rest < len(free):
            raise ValueError(
                f"recall channels {', '.join(free)} have no quota or share, but only {rest} "
                f"of total = {self.total} items are left for them; give them a quota or share "
                "or raise recall.total"
            )
        for i, cid in enumerate(free):
            fixed[cid] = rest // len(free) + (1 if i < rest % len(free) else 0)
        return {c.id: fixed[c.id] for c in self.channels}


class ScorerConfig(StrictModel):
    """Pre-rank / rank slot: the registered scorer and how many items it passes on."""

    name: str = "passthrough"
    keep: int = Field(default=100, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)


class FitConfig(StrictModel):
    """How the learned stages after recall get their training lists (``Funnel.fit``).

    ``stacking = "oof"`` (default): the channels are fitted on each user's history minus
    its last ``holdout`` items (``folds`` times, the cut moving back ``holdout`` items each
    time), retrieve for the cut point, and the held-out items label those lists; then the
    channels are refitted on the whole training part for serving. ``"in-sample"``: the
    channels fitted on the whole training part produce the lists (leaky; for comparison).
    ``channel_fits``: ``"once"`` fits the channels a single time, before the deepest cut,
    for every fold (cheap); ``"per_fold"`` refits them at every cut. Each list keeps its
    positives and at most ``max_neg`` of its negatives; at most ``max_queries`` lists per
    fold.
    """

    stacking: Literal["oof", "in-sample"] = "oof"
    holdout: int = Field(default=1, ge=1)
    folds: int = Field(default=3, ge=1)
    channel_fits: Literal["once", "per_fold"] = "once"
    max_neg: int = Field(default=200, ge=1)
    max_queries: int = Field(default=100_000, ge=1)


class RerankConfig(StrictModel):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


_Slot = TypeVar("_Slot", ChannelConfig, ScorerConfig)


class FunnelConfig(StrictModel):
    """The whole funnel: recall → pre-rank → rank → re-rank chain → ``k`` items."""

    recall: RecallConfig
    prerank: ScorerConfig = ScorerConfig(keep=200)
    rank: ScorerConfig = ScorerConfig(keep=50)
    rerank: list[RerankConfig] = Field(default_factory=lambda: [RerankConfig(name="seen_filter")])
    k: int = Field(default=10, ge=1)
    seed: int = 0
    fit: FitConfig = FitConfig()
    #: ``False``: the users' own history is not excluded from recall (repeat consumption:
    #: pair it with a ``repeat`` channel and no ``seen_filter``).
    exclude_seen: bool = True
    tasks: list[dict[str, Any]] | None = None
    threads: int | None = Field(default=None, ge=1)  # torch + BLAS + Faiss (funnelrec.threads)

    def resolved(self) -> FunnelConfig:
        """Same config with every stage's params completed by its defaults (validated).

        Top-level ``tasks`` (multi-task objectives, configured once) go to every recall
        channel, the pre-ranker and the ranker that take ``tasks`` and do not set their own."""
        if self.tasks is not None:
            return (
                self.model_copy(
                    update={
                        "recall": self.recall.model_copy(
                            update={
                                "channels": [
                                    _with_tasks(RECALL, c, self.tasks) for c in self.recall.channels
                                ]
                            }
                        ),
                        "prerank": _with_tasks(PRERANK, self.prerank, self.tasks),
                        "rank": _with_tasks(RANK, self.rank, self.tasks),
                        "tasks": None,
                    }
                )
                .resolved()
                .model_copy(update={"tasks": self.tasks})
            )
        channels = [
            c.model_copy(update={"params": _resolve(RECALL, c.name, c.params)})
            for c in self.recall.channels
        ]
        return self.model_copy(
            update={
                "recall": self.recall.model_copy(update={"channels": channels}),
                "prerank": self.prerank.model_copy(
                    update={"params": _resolve(PRERANK, self.prerank.name, self.prerank.params)}
                ),
                "rank": self.rank.model_copy(
                    update={"params": _resolve(RANK, self.rank.name, self.rank.params)}
                ),
                "rerank": [
                    r.model_copy(update={"params": _resolve(RERANK, r.name, r.params)})
                    for r in self.rerank
                ],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _with_tasks(registry: Registry[Any], slot: _Slot, tasks: list[dict[str, Any]]) -> _Slot:
    """``slot`` with ``tasks`` in its params when its stage has a ``tasks`` parameter."""
    fields = getattr(registry.get(slot.name).params_model, "model_fields", {})
    if "tasks" not in fields or "tasks" in slot.params:
        return slot
    return slot.model_copy(update={"params": {**slot.params, "tasks": tasks}})


def _resolve(registry: Registry[Any], name: str, params: dict[str, Any]) -> dict[str, Any]:
    cls = registry.get(name)
    result: dict[str, Any] = cls.validate_params(params).model_dump(mode="json")
    return result


def parse_config(raw: dict[str, Any], source: str = "config") -> FunnelConfig:
    """Validate a raw mapping (and every stage's params) into a resolved ``FunnelConfig``."""
    try:
        config = FunnelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None
    try:
        return config.resolved()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> FunnelConfig:
    """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``) or JSON funnel config."""
    path = Path(path)
    raw = read_mapping_file(path, "config")
    return parse_config(raw, source=str(path))


def save_config(config: FunnelConfig, path: Path) -> None:
    """Write the config as YAML (readable back with ``load_config``)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def default_config() -> FunnelConfig:
    """A small funnel that works on any dataset (popular recall, pass-through ranks)."""
    return parse_config({"recall": {"channels": [{"name": "popular"}]}}, source="default")
