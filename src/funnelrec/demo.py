"""``funnelrec demo``: synthetic world → fitted funnel → stage-by-stage evaluation → one traced
slate, plus where to go next. The CLI prints it in one screen; ``--json`` gives all of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from funnelrec.config import load_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import split as split_dataset
from funnelrec.eval.funnel import FunnelReport, evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.trace import FunnelTrace

NEXT_STEPS = (  # (what, command): what to try after the demo, one line each
    ("save", "funnelrec fit -c configs/synthetic.toml -d synthetic -o artifacts/demo"),
    ("explain", "funnelrec recommend -a artifacts/demo -u u0001 --explain"),
    ("report", "funnelrec report -a artifacts/demo -d synthetic -o report.html"),
    ("inspect", "funnelrec serve -a artifacts/demo, then open http://127.0.0.1:8000/ui"),
)
HEADLINE_METRICS = ("ndcg@10", "recall@10", "hit@10", "mrr@10")


def demo_config_path() -> Path:
    """The built-in demo funnel config (every stage on the synthetic world)."""
    return Path(str(resources.files("funnelrec") / "configs" / "demo.toml"))


@dataclass
class DemoResult:
    """What the demo computed: the world, the evaluation, one traced request."""

    dataset: Dataset
    report: FunnelReport
    trace: FunnelTrace
    user_id: str


def run_demo(
    users: int = 2000,
    interactions: int = 100_000,
    config: Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Generate the synthetic world, fit the funnel on its ``loo`` train part (validation
    for early stopping), evaluate every stage on test, and trace the first test user.

    Args:
        users, interactions: size of the synthetic world (seed 0).
        config: funnel config (default: ``demo_config_path()``).
        progress: called with a short message before each long step.
    """
    from funnelrec.data.synthetic import generate

    progress("generating the synthetic world")
    dataset = generate(n_users=users, n_interactions=interactions, seed=0)
    parts = split_dataset(dataset, "loo")
    funnel = Funnel(load_config(config or demo_config_path()))
    progress("fitting the funnel")
    funnel.fit(parts.train, valid=parts.valid)
    progress("evaluating every stage")
    report = evaluate_funnel(funnel, parts)
    user = parts.test_users()[:1]
    trace = funnel.run(parts.test_query(user, funnel.config.k))
    return DemoResult(dataset, report, trace, str(dataset.user_ids.external(user)[0]))


def headline(metrics: dict[str, float]) -> str:
    """One line of the slate's main metrics, e.g. ``NDCG@10 0.0912 · Recall@10 0.1650``."""
    names = {"ndcg": "NDCG", "recall": "Recall", "hit": "Hit", "mrr": "MRR"}
    parts = []
    for key in HEADLINE_METRICS:
        if key in metrics:
            name, k = key.split("@")
            parts.append(f"{names[name]}@{k} {metrics[key]:.4f}")
    return " · ".join(parts)


def demo_json(result: DemoResult, report: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable demo: the evaluation (``report``), the traced user and the full
    trace of their request (``FunnelTrace.explain``)."""
    return {
        "dataset": {
            "name": result.dataset.name,
            "n_users": result.dataset.n_users,
            "n_items": result.dataset.n_items,
            "n_interactions": len(result.dataset),
        },
        "report": report,
        "user": result.user_id,
        "trace": result.trace.explain(0, result.dataset.item_ids),
        "next": [command for _, command in NEXT_STEPS],
    }
