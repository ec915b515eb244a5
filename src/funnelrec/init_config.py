"""``funnelrec init``: a funnel config that uses only what the data supports, sized to it.

``propose(profile)`` returns the config as a mapping plus one comment per choice; ``render``
writes it as commented TOML. Rules (each one a comment in the file), the shape of the
hand-built full funnels (``configs/*-funnel.toml``, chosen on validation):

- item-CF always (co-occurrence is the strongest cheap channel); user-CF up to 100k users;
  SASRec when histories are long enough to learn order from (median >= 5 events, >= 20k
  events), with dropout and loss sized to the density and the catalogue; the global-preference
  channels ALS always and EASE up to ``EASE_MAX_ITEMS`` items (regularisation sized to the
  density);
- tag recall when items have tags/categories; popular always (cold start); high-CTR only with
  impressions; fresh only with real timestamps;
- a ``repeat`` channel and ``exclude_seen = false`` (no seen filter) when users come back to
  their items (repeat rate >= ``REPEAT_RATE``);
- a LambdaMART ranker over a pass-through pre-rank, trained on out-of-fold recall lists
  (``[fit]``: enough cut points per user for ~10k training lists, at most 15k per cut), with
  every channel that can score any item giving it that score as a feature;
- dedup by title when items have titles; category scattering (a diversity rule that costs
  accuracy) written as a commented-out block when items have categories.

``effort = "quick"`` makes every learned stage tiny (one epoch, one cut, few trees, EASE over
the most popular items only): tests and smoke runs.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from funnelrec import preflight
from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.errors import DataError
from funnelrec.profile import DataProfile, profile

REPEAT_RATE = 0.2
EASE_MAX_ITEMS = 20_000  # EASE's dense item-item model: about 16·m² bytes while fitting
SPARSE = 0.002  # density below which the sparse-data settings apply (Beauty-like logs)
TRAIN_LISTS = 10_000  # out-of-fold training lists the ranker should get
Effort = Literal["default", "quick"]


@dataclass
class Proposal:
    """A config mapping and a comment for each choice (keyed like ``recall.channels.itemcf``)."""

    config: dict[str, Any]
    notes: dict[str, str] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)


def propose(p: DataProfile, effort: Effort = "default") -> Proposal:
    """Config for data with profile ``p``.

    Raises:
        DataError: the data has no interactions (nothing to learn a funnel from).
    """
    if p.n_interactions == 0:
        raise DataError(
            f"dataset {p.name!r} has no interactions (a catalogue only): init needs an event log"
        )
    repeat = max(p.repeat_rate, p.last_repeat_rate) >= REPEAT_RATE
    out = Proposal(config={"k": 10}, header=_header(p))
    channels = _channels(p, effort, repeat, out.notes)
    total = int(min(200, max(50, p.n_items // 5)))
    out.config["recall"] = {"total": total, "normalisation": "minmax", "channels": channels}
    out.notes["recall"] = (
        f"recall budget {total} items (catalogue {p.n_items:,}); minmax-normalised scores"
    )
    if repeat:
        out.config["exclude_seen"] = False
        out.notes["exclude_seen"] = (
            f"repeat rate {p.repeat_rate:.2f} (last item {p.last_repeat_rate:.2f}): seen items "
            "may come back, so the history is not filtered"
        )
    out.config["fit"] = _fit(p, effort)
    out.notes["fit"] = (
        "the ranker learns from out-of-fold lists: channels fitted on each user's history "
        f"before {out.config['fit']['folds']} cut point(s), the next item labels each list"
    )
    out.config["prerank"] = {"name": "passthrough", "keep": total}
    out.notes["prerank"] = "no cut before the ranker (the recall set is small enough)"
    out.config["rank"] = _ranker(p, effort)
    out.notes["rank"] = (
        "LambdaMART (LightGBM lambdarank) over every channel's score, rank and presence, the "
        "full scores of the channels that can score any item, popularity and history features; "
        "early-stopped on validation NDCG"
    )
    out.config["rerank"] = _rerank(p, repeat, out.notes)
    return out


def _channels(p: DataProfile, effort: Effort, repeat: bool, notes: dict[str, str]) -> list[Any]:
    """Recall channels with shares that add up to 1."""
    chans: list[dict[str, Any]] = []

    def add(name: str, share: float, note: str, **extra: Any) -> None:
        if not extra.get("params", True):
            extra.pop("params")  # no overrides: the channel's defaults
        chans.append({"name": name, "share": share, **extra})
        notes[f"recall.channels.{name}"] = note

    median = p.seq_len.get("median", 0.0)
    sparse = p.density < SPARSE
    if repeat:
        add("repeat", 0.3, "the user's own items by frequency and recency (repeat consumption)")
    add("itemcf", 0.35, "sequence-aware item co-occurrence over the recent history", weight=3.0)
    if p.n_users <= 100_000:
        add("usercf", 0.15, f"neighbour users ({p.n_users:,} users: affordable)")
    if median >= 5 and p.n_interactions >= 20_000:
        add("sasrec", 0.2, _sasrec_note(p), params=_sasrec(p, effort))
    if p.n_items <= EASE_MAX_ITEMS:
        add("ease", 0.1, _ease_note(p, sparse), params=_ease(sparse, effort))
    add("als", 0.1, _als_note(sparse), params=_als(sparse, effort))
    if any(c in p.item_columns for c in ("tags", "category")):
        add("tag", 0.05, "the user's tag/category profile", params={"fallback_popular": True})
    add("popular", 0.05, "cold-start fallback")
    if p.impressions:
        add("high_ctr", 0.01, "best smoothed click-through rate (impressions)")
    if p.real_time and p.span_days >= 30:
        age = float(round(min(max(p.span_days * 0.1, 7.0), 365.0)))
        add("fresh", 0.05, f"newest items ({p.span_days:.0f} days of data)", params={
            "max_age_days": age})  # fmt: skip
    total = sum(c["share"] for c in chans)
    for c in chans:
        c["share"] = round(c["share"] / total, 4)
    return chans


def _sasrec(p: DataProfile, effort: Effort) -> dict[str, Any]:
    """SASRec params sized to the data (dropout to density, sampled softmax to the catalogue)."""
    sparse = p.density < SPARSE
    params: dict[str, Any] = {
        "lr": 0.003,
        "dropout": 0.5 if sparse else 0.2,
        "max_len": 50,
        "patience": 3,
        "threads": 2,
    }
    if p.n_items > 5000:
        params.update(loss="sampled", n_extra=2048, batch_size=256)
    if effort == "quick":
        params.update(epochs=1, dim=16, max_len=20, batch_size=512, early_stop=False)
    return params


def _sasrec_note(p: DataProfile) -> str:
    return (
        f"self-attention over the last events (median history {p.seq_len.get('median', 0):.0f}"
        f", density {p.density:.4f}); epochs by early stopping on an inner split"
    )


def _ease(sparse: bool, effort: Effort) -> dict[str, Any]:
    """EASE's L2: lower on sparse logs (fewer co-occurrences to shrink)."""
    params: dict[str, Any] = {"l2": 50.0 if sparse else 500.0}
    if effort == "quick":
        params.update(max_items=2000, large="most_popular")
    return params


def _ease_note(p: DataProfile, sparse: bool) -> str:
    return f"closed-form item-item model (EASE; {p.n_items:,} items fit its dense model)" + (
        "; low L2 for sparse data" if sparse else ""
    )


def _als(sparse: bool, effort: Effort) -> dict[str, Any]:
    """Implicit ALS: on sparse logs more factors, stronger regularisation and confidence."""
    params: dict[str, Any] = {"factors": 256, "regularization": 1.0, "alpha": 5.0} if sparse else {}
    if effort == "quick":
        params.update(factors=16, iterations=2)
    return params


def _als_note(sparse: bool) -> str:
    return "global preference (implicit ALS, the user vector folded in at request time)" + (
        "; 256 factors for sparse data" if sparse else ""
    )


def _fit(p: DataProfile, effort: Effort) -> dict[str, Any]:
    """Out-of-fold stacking sized to the user count (about ``TRAIN_LISTS`` training lists)."""
    folds = int(min(max(round(TRAIN_LISTS / max(p.n_users, 1)), 2), 10))
    out: dict[str, Any] = {
        "stacking": "oof",
        "folds": folds,
        "max_neg": 60 if p.n_items < 5000 else 40,
        "max_queries": 15_000,
    }
    if effort == "quick":
        out.update(folds=1, max_queries=2000)
    return out


def _ranker(p: DataProfile, effort: Effort) -> dict[str, Any]:
    params: dict[str, Any] = {
        "num_leaves": 15,
        "min_data_in_leaf": 200,
        "lambda_l2": 10.0,
        "feature_fraction": 0.8,
        "truncation_level": 50,
        "threads": 2,
    }
    if effort == "quick":
        params.update(n_estimators=20, early_stopping=5, min_data_in_leaf=20)
    return {"name": "lambdamart", "keep": 50, "params": params}


def _rerank(p: DataProfile, repeat: bool, notes: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not repeat:
        out.append({"name": "seen_filter"})
        notes["rerank.seen_filter"] = "items the user already had are not shown again"
    if "title" in p.item_columns:
        out.append({"name": "dedup", "params": {"key": "title"}})
        notes["rerank.dedup"] = "one item per normalised title (re-releases count once)"
    if "category" in p.item_columns:
        notes["rerank.optional"] = (
            "category diversity (costs some accuracy): add\n"
            '[[rerank]]\nname = "scatter"\nparams = { window = 5, max_per_window = 3 }'
        )
    return out


def _header(p: DataProfile) -> list[str]:
    return [
        f"Funnel for {p.name!r}: written by `funnelrec init` from the data profile",
        f"({p.n_users:,} users, {p.n_items:,} items, {p.n_interactions:,} events, "
        f"timestamps: {p.timestamps}, feedback: {', '.join(p.feedback) or 'none'}).",
        "Every stage uses only what the data has; tune it on validation with `funnelrec tune`.",
    ]


def write_config(
    dataset: Dataset, out: Path, effort: Effort = "default", force: bool = False
) -> str:
    """Profile ``dataset``, propose a config, check it and write it to ``out`` as TOML.

    Raises:
        DataError: no interactions; ``out`` exists and ``force`` is not set.
    """
    if out.exists() and not force:
        raise DataError(f"{out} exists; pass --force to overwrite it")
    prof = profile(dataset)
    text = render(propose(prof, effort))
    config = parse_config(tomllib.loads(text), str(out))
    preflight.ensure(config, prof)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


# -- TOML rendering -----------------------------------------------------------------------
def render(proposal: Proposal) -> str:
    """The proposal as commented TOML (readable back with ``funnelrec.config.load_config``)."""
    cfg, notes = proposal.config, proposal.notes
    lines = [f"# {h}" for h in proposal.header] + [""]
    for key in ("k", "exclude_seen", "seed"):
        if key in cfg:
            lines += [*_comment(notes.get(key)), f"{key} = {_value(cfg[key])}"]
    if not cfg.get("rerank"):  # an empty chain must be written (the default is seen_filter)
        lines += ["rerank = []"]
    if "fit" in cfg:
        lines += ["", *_comment(notes.get("fit")), "[fit]"]
        lines += [f"{k} = {_value(v)}" for k, v in cfg["fit"].items()]
    recall = cfg["recall"]
    lines += ["", *_comment(notes.get("recall")), "[recall]"]
    lines += [f"{k} = {_value(v)}" for k, v in recall.items() if k != "channels"]
    for ch in recall["channels"]:
        lines += ["", *_comment(notes.get(f"recall.channels.{ch['name']}")), "[[recall.channels]]"]
        lines += [f"{k} = {_value(v)}" for k, v in ch.items() if v != {}]  # no empty params
    for slot in ("prerank", "rank"):
        lines += ["", *_comment(notes.get(slot)), f"[{slot}]"]
        lines += [f"{k} = {_value(v)}" for k, v in cfg[slot].items()]
    for r in cfg.get("rerank", []):
        lines += ["", *_comment(notes.get(f"rerank.{r['name']}")), "[[rerank]]"]
        lines += [f"{k} = {_value(v)}" for k, v in r.items()]
    if notes.get("rerank.optional"):
        lines += ["", *[f"# {line}" for line in notes["rerank.optional"].splitlines()]]
    return "\n".join(lines) + "\n"


def _comment(note: str | None) -> list[str]:
    return [f"# {note}"] if note else []


def _value(v: Any) -> str:
    """A TOML literal (inline table for mappings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")
