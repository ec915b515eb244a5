"""``funnelrec tune``: Optuna search of a funnel config on the validation part only.

The data is split by the protocol; every trial fits the funnel on the train part and scores
NDCG@10 of the validation part (full ranking, history = train). The test part is dropped
before the search starts, so no choice can see it. Searched: the channels' shares of the
recall budget, the budget itself, item-CF and user-CF neighbourhoods and recency, the ranker
(learned or pass-through; LambdaMART's leaves, leaf size, L2, feature fraction, truncation
level and learning rate, or a deep ranker's learning rate) and whether categories are
scattered. Learned channels keep their params and choose their epochs by early stopping on
their own inner split. Fitted channels and out-of-fold training lists are shared between
trials through a ``FitMemo`` (keyed by the data and the config that determine them), so a
trial that only changes the ranker refits only the ranker. Trial 0 is the given config, so
the tuned config is never worse on validation. Bad trials are pruned after a third of the
validation users (median rule).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split
from funnelrec.errors import ConfigError
from funnelrec.eval.protocol import evaluate, subsample_users
from funnelrec.pipeline import Funnel
from funnelrec.registry import RANK
from funnelrec.stacking import FitMemo

METRIC = "ndcg@10"
TOTALS = (100, 150, 200, 300)
# LambdaMART params searched: (low, high, log scale); ints are searched as ints
LAMBDAMART_SPACE: dict[str, tuple[float, float, bool]] = {
    "num_leaves": (7, 63, True),
    "min_data_in_leaf": (20, 500, True),
    "lambda_l2": (0.1, 100.0, True),
    "feature_fraction": (0.5, 1.0, False),
    "truncation_level": (10, 100, True),
    "learning_rate": (0.02, 0.2, True),
}


@dataclass
class TuneResult:
    """The best config (raw mapping), its validation figure and the search history."""

    config: dict[str, Any]
    best_value: float
    init_value: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    protocol: str = "loo"
    n_valid_users: int = 0

    @property
    def n_trials(self) -> int:
        return len(self.trials)


def parse_budget(text: str) -> float:
    """Seconds of ``30m``, ``1h``, ``90s`` or a plain number of seconds."""
    text = text.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(text[-1:])
    try:
        return float(text[:-1]) * scale if scale else float(text)
    except ValueError:
        raise ConfigError(f"bad budget {text!r}: want e.g. 30m, 1h, 600s") from None


def inner_split(dataset: Dataset, protocol: str) -> Split:
    """Train and validation parts of ``dataset`` (the test part is dropped here)."""
    return without_test(split(dataset, protocol))


def without_test(parts: Split) -> Split:
    """``parts`` with the test part replaced by the validation part (nothing can read it)."""
    return Split(protocol=parts.protocol, train=parts.train, valid=parts.valid, test=parts.valid)


def space(trial: optuna.Trial, raw: dict[str, Any]) -> dict[str, Any]:
    """A config for ``trial``: ``raw`` (the starting config) with the searched values set."""
    cfg = copy.deepcopy(raw)
    recall = cfg["recall"]
    recall["total"] = trial.suggest_categorical("total", TOTALS)
    for ch in recall["channels"]:
        cid = ch.get("alias", ch["name"])
        ch.pop("quota", None)
        ch["share"] = trial.suggest_float(f"share.{cid}", 0.005, 1.0, log=True)
        params = ch.setdefault("params", {})
        if ch["name"] == "itemcf":
            params["alpha"] = trial.suggest_float(f"{cid}.alpha", 0.3, 1.0)
            params["history_len"] = trial.suggest_int(f"{cid}.history_len", 5, 50, log=True)
            params["recency_decay"] = trial.suggest_float(f"{cid}.recency_decay", 0.5, 0.95)
        elif ch["name"] == "usercf":
            params["n_neighbours"] = trial.suggest_int(f"{cid}.n_neighbours", 10, 200, log=True)
            params["recency_decay"] = trial.suggest_float(f"{cid}.recency_decay", 0.5, 1.0)
    shares = sum(c["share"] for c in recall["channels"])
    for ch in recall["channels"]:
        ch["share"] = round(ch["share"] / shares, 4)
    learned = cfg.get("rank", {}).get("name", "passthrough") != "passthrough"
    if learned and not trial.suggest_categorical("rank.learned", [True, False]):
        cfg["rank"] = {"name": "passthrough", "keep": cfg["rank"].get("keep", 50)}
    elif learned and cfg["rank"]["name"] == "lambdamart":
        params = cfg["rank"].setdefault("params", {})
        for name, (low, high, log) in LAMBDAMART_SPACE.items():
            suggest = trial.suggest_int if isinstance(low, int) else trial.suggest_float
            params[name] = suggest(f"rank.{name}", low, high, log=log)  # type: ignore[arg-type]
    elif learned:
        params = cfg["rank"].setdefault("params", {})
        params["lr"] = trial.suggest_float("rank.lr", 1e-4, 1e-2, log=True)
    scatter = any(r["name"] == "scatter" for r in cfg.get("rerank", []))
    if scatter and not trial.suggest_categorical("rerank.scatter", [True, False]):
        cfg["rerank"] = [r for r in cfg["rerank"] if r["name"] != "scatter"]
    return cfg


def starting_point(raw: dict[str, Any]) -> dict[str, Any]:
    """The searched values of ``raw`` itself (enqueued as trial 0)."""
    config = parse_config(raw, "tune")
    point: dict[str, Any] = {"total": min(TOTALS, key=lambda t: abs(t - config.recall.total))}
    quotas = config.recall.quotas()
    for ch in config.recall.channels:
        point[f"share.{ch.id}"] = float(np.clip(quotas[ch.id] / config.recall.total, 0.005, 1))
        p = ch.params
        if ch.name == "itemcf":
            point[f"{ch.id}.alpha"] = float(np.clip(p["alpha"], 0.3, 1.0))
            point[f"{ch.id}.history_len"] = int(np.clip(p["history_len"] or 50, 5, 50))
            point[f"{ch.id}.recency_decay"] = float(np.clip(p["recency_decay"], 0.5, 0.95))
        elif ch.name == "usercf":
            point[f"{ch.id}.n_neighbours"] = int(np.clip(p["n_neighbours"], 10, 200))
            point[f"{ch.id}.recency_decay"] = float(np.clip(p["recency_decay"], 0.5, 1.0))
    if config.rank.name == "lambdamart":
        point["rank.learned"] = True
        params = RANK.get("lambdamart").validate_params(config.rank.params)
        for name, (low, high, _) in LAMBDAMART_SPACE.items():
            value = np.clip(getattr(params, name), low, high)
            point[f"rank.{name}"] = int(value) if isinstance(low, int) else float(value)
    elif config.rank.name != "passthrough":
        point["rank.learned"] = True
        point["rank.lr"] = float(np.clip(config.rank.params.get("lr", 1e-3), 1e-4, 1e-2))
    if any(r.name == "scatter" for r in config.rerank):
        point["rerank.scatter"] = True
    return point


def _objective(
    raw: dict[str, Any], inner: Split, users: np.ndarray[Any, Any], memo: FitMemo
) -> Callable[[optuna.Trial], float]:
    chunks = np.array_split(users, 3)

    def objective(trial: optuna.Trial) -> float:
        cfg = space(trial, raw)
        trial.set_user_attr("config", cfg)
        funnel = Funnel(parse_config(cfg, f"trial {trial.number}"), memo=memo)
        funnel.fit(inner.train)  # valid labels nothing here: it is what the trial is scored on
        total, seen = 0.0, 0
        for step, chunk in enumerate(chunks):
            res = evaluate(funnel.recommend, inner, ks=(10,), part="valid", users=chunk)
            total += res.metrics[METRIC] * len(chunk)
            seen += len(chunk)
            trial.report(total / seen, step)
            if step == 0 and trial.should_prune():
                raise optuna.TrialPruned()
        return total / max(seen, 1)

    return objective


def tune(
    raw: dict[str, Any],
    dataset: Dataset,
    *,
    protocol: str = "loo",
    trials: int = 20,
    budget_s: float = 1800.0,
    valid_users: int | None = 3000,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    inner: Split | None = None,
    memo: FitMemo | None = None,
) -> TuneResult:
    """Search around ``raw`` (a config mapping) on the validation part of ``dataset``.

    ``inner``: the train/validation split to use (default ``inner_split(dataset, protocol)``);
    ``memo``: fitted channels and training lists to share with later fits (e.g. the final
    fits of the starting and the tuned config)."""
    start = time.perf_counter()
    parse_config(raw, "config")  # bad configs fail before any fit
    inner = inner or inner_split(dataset, protocol)
    users = subsample_users(inner.valid_users(), valid_users, seed)
    if len(users) == 0:
        raise ConfigError(f"protocol {protocol!r} leaves no validation users on {dataset.name}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    study.enqueue_trial(starting_point(raw))
    memo = memo or FitMemo()

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress is not None:
            best = study.best_value if study.best_trial else float("nan")
            progress(f"trial {trial.number}: {trial.state.name} {trial.value} best {best:.4f}")

    study.optimize(
        _objective(raw, inner, users, memo),
        n_trials=trials,
        timeout=budget_s,
        callbacks=[report],
        gc_after_trial=True,
    )
    history = [_trial_row(t) for t in study.trials]
    first = study.trials[0]
    return TuneResult(
        config=study.best_trial.user_attrs["config"],
        best_value=float(study.best_value),
        init_value=float(first.value) if first.value is not None else float("nan"),
        trials=history,
        wall_s=time.perf_counter() - start,
        protocol=protocol,
        n_valid_users=len(users),
    )


def _trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    duration = t.duration.total_seconds() if t.duration is not None else None
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
        "params": t.params,
        "duration_s": duration,
    }


def write_outputs(result: TuneResult, out: Path, name: str) -> dict[str, Path]:
    """Tuned config ``out``, history ``<stem>.history.json`` and plot ``<stem>.history.png``."""
    from funnelrec.init_config import Proposal, render

    header = [
        f"Tuned by `funnelrec tune` on {name!r} ({result.protocol} validation part only, "
        f"{len(result.trials)} trials, {result.n_valid_users} validation users)",
        f"validation {METRIC}: {result.best_value:.4f} (starting config: {result.init_value:.4f})",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(Proposal(config=result.config, header=header)), encoding="utf-8")
    history = out.with_suffix(".history.json")
    payload = history_payload(result, name)
    history.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    plot = out.with_suffix(".history.png")
    plot.write_bytes(history_png(payload))
    return {"config": out, "history": history, "plot": plot}


def history_payload(result: TuneResult, name: str) -> dict[str, Any]:
    """The search history as written to ``<stem>.history.json``."""
    return {
        "dataset": name,
        "protocol": result.protocol,
        "metric": f"valid {METRIC}",
        "best_value": result.best_value,
        "init_value": result.init_value,
        "n_valid_users": result.n_valid_users,
        "wall_s": result.wall_s,
        "trials": result.trials,
    }


HISTORY_KEYS = ("dataset", "protocol", "metric", "best_value", "init_value", "trials")


def load_history(path: Path) -> dict[str, Any]:
    """A ``<stem>.history.json`` written by ``funnelrec tune``.

    Raises:
        ConfigError: the file is missing or is not a tune history (one line).
    """
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read tune history {path}: {exc}") from None
    missing = [k for k in HISTORY_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise ConfigError(f"{path} is not a tune history (missing {', '.join(missing)})")
    return dict(payload)


def history_png(payload: dict[str, Any]) -> bytes:
    """PNG of a search history: every trial's validation figure, pruned trials at their
    first report, the best so far and the starting config's figure."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = payload["trials"]
    done = [t for t in trials if t["value"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [t["number"] for t in done]
    ys = [t["value"] for t in done]
    ax.scatter(xs, ys, s=14, label="trial (complete)")
    pruned = [t for t in trials if t["state"] == "PRUNED" and t["intermediate"]]
    ax.scatter(
        [t["number"] for t in pruned],
        [next(iter(t["intermediate"].values())) for t in pruned],
        s=14,
        marker="x",
        label="pruned (first third)",
    )
    if ys:
        ax.plot(xs, np.maximum.accumulate(ys), color="black", lw=1, label="best so far")
    ax.axhline(payload["init_value"], ls="--", lw=0.8, color="grey", label="starting config")
    ax.set_xlabel("trial")
    ax.set_ylabel(payload["metric"])
    ax.set_title(f"tune on {payload['dataset']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
