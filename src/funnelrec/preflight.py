"""Pre-flight check: a whole funnel config against what the data supports, before any fit.

Every stage declares its needs (``Stage.requires(params)``, see ``funnelrec.needs``); the
data profile lists what the dataset offers. ``check`` returns every unmet need of every
stage (stage, what is missing, what it was for, a suggestion); ``ensure`` raises one
``ConfigError`` listing them all, so a config fails once with the full list instead of
one error per fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from funnelrec import needs
from funnelrec.config import FunnelConfig
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.profile import DataProfile, profile
from funnelrec.registry import PRERANK, RANK, RECALL, RERANK, Registry


@dataclass(frozen=True)
class Problem:
    """One unmet need: ``stage`` (e.g. ``recall high_ctr``) lacks ``missing``."""

    stage: str
    missing: str
    why: str
    suggestion: str

    def __str__(self) -> str:
        return f"{self.stage}: needs {self.missing} ({self.why}); {self.suggestion}"


def _slots(config: FunnelConfig) -> list[tuple[str, Registry[Any], str, dict[str, Any]]]:
    """``(label, registry, name, params)`` of every stage of ``config``."""
    out: list[tuple[str, Registry[Any], str, dict[str, Any]]] = [
        (f"recall {c.id}", RECALL, c.name, c.params) for c in config.recall.channels
    ]
    out.append(
        (f"prerank {config.prerank.name}", PRERANK, config.prerank.name, config.prerank.params)
    )
    out.append((f"rank {config.rank.name}", RANK, config.rank.name, config.rank.params))
    out += [
        (f"rerank[{i}] {r.name}", RERANK, r.name, r.params) for i, r in enumerate(config.rerank)
    ]
    return out


def check(config: FunnelConfig, data: Dataset | DataProfile) -> list[Problem]:
    """Every unmet data need of ``config`` on ``data`` (empty: the config fits the data)."""
    prof = data if isinstance(data, DataProfile) else profile(data)
    offered = prof.tokens
    problems: list[Problem] = []
    if needs.INTERACTIONS not in offered:
        problems.append(
            Problem("funnel", "interactions", "every stage learns from them", _no_events(prof))
        )
    for label, registry, name, params in _slots(config):
        cls = registry.get(name)
        for need in cls.requires(cls.validate_params(params)):
            if not offered.intersection(need.any_of):
                missing = " or ".join(needs.describe(t) for t in need.any_of)
                problems.append(Problem(label, missing, need.why, need.fix + _known(need, prof)))
    if config.exclude_seen is False and any(r.name == "seen_filter" for r in config.rerank):
        problems.append(
            Problem(
                "rerank seen_filter",
                "exclude_seen = true",
                "exclude_seen = false lets seen items through, seen_filter drops them again",
                "remove seen_filter, or set exclude_seen = true",
            )
        )
    return problems


def ensure(config: FunnelConfig, data: Dataset | DataProfile) -> None:
    """Raise one ``ConfigError`` listing every problem of ``config`` on ``data``."""
    problems = check(config, data)
    if problems:
        name = data.name
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            f"config does not fit dataset {name!r} ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''}{_missing_file(data, problems)}):\n{lines}"
        )


def _missing_file(data: Dataset | DataProfile, problems: list[Problem]) -> str:
    """``"; item file X is missing"`` when a loader found no item file and a stage needs an
    item column (the cause, not only the symptom)."""
    missing = data.meta.get("missing_item_file") if isinstance(data, Dataset) else None
    if missing and any(p.missing.startswith("item column") for p in problems):
        return f"; item file {missing} is missing"
    return ""


def _known(need: needs.Need, prof: DataProfile) -> str:
    """What the data has of the kind the need asks for (a hint after the suggestion)."""
    kinds = {t.partition(":")[0] for t in need.any_of}
    if "item" in kinds:
        return f" (item columns are: {', '.join(prof.item_columns) or 'none'})"
    if "feedback" in kinds or needs.IMPRESSIONS in need.any_of:
        return f" (feedback columns are: {', '.join(prof.feedback) or 'none'})"
    if "user" in kinds:
        return f" (user columns are: {', '.join(prof.user_columns) or 'none'})"
    return ""


def _no_events(prof: DataProfile) -> str:
    return f"dataset {prof.name!r} has no interactions (a catalogue only): load an event log"
