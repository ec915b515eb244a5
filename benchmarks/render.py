"""Render BENCHMARKS.md from benchmarks/results/*.json (numbers live only in the JSON).

Quality tables show our rows next to the issues' peer figures (`references.py`) and the
ratio of our NDCG@10 to the best peer's, all from the same result files.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from references import PEERS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MAIN_METRICS = (
    "recall@10",
    "recall@20",
    "ndcg@10",
    "recall@200",
    "mrr@10",
    "hit@10",
    "coverage@10",
    "recall@100",
    "qps",
    "speedup",
    "auc",
    "auc_std",
    "logloss",
    "p50_ms",
    "p99_ms",
    "items_per_s",
    "head1_share@200",
    "coverage@200",
    "hist_cat_cover@200",
    "test_cat_hit@200",
    "minority_recall@200",
    "auc_income",
    "auc_income_std",
    "auc_marital",
    "auc_marital_std",
    "encoded",
    "encoded_on_rerun",
    "recall@50",
    "ild",
    "categories@10",
    *(f"ctr_r{r}" for r in range(1, 11)),
    "ctr_final",
    "ctr_pos1",
    "ctr_pos10",
)
# stages compared with peer figures, and the metric of their `× best peer` column
RATIO_METRIC = {"recall": "ndcg@10", "funnel": "ndcg@10", "rank": "auc"}
INTRO = """# Benchmarks

Rendered by `python benchmarks/render.py` from `benchmarks/results/*.json`; every row names
the command that produced it. Data: `../shared/data` (never committed). Protocols are those
of DESIGN.md. Machine: 2 cores, 24 GB, no GPU. `peak MB` is the process's peak resident
memory. Rows marked *peer* are the reference figures quoted in the issues (not re-measured);
`× best peer <metric>` is our value over the best peer's in the same table (NDCG@10 for
recall, AUC for rank; rank `wall s` is per seed).
"""


def render(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["protocol"] == "stream":  # scale rows (benchmarks/scale.py): one table, all sizes
            r = {**r, "model": f"{r['model']} · {r['dataset']}", "dataset": "synthetic-<n>m"}
        groups[(r["stage"], r["dataset"], r["protocol"])].append(r)
    out = [INTRO]
    for (stage, dataset, protocol), items in sorted(groups.items()):
        out.extend(_section(stage, dataset, protocol, items))
    out.extend(_reproduction())
    return "\n".join(out) + "\n"


def _reproduction() -> list[str]:
    """The last ``benchmarks/reproduce.py`` verdict of every re-run command."""
    path = RESULTS / "reproduce" / "report.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text())
    lines = [
        "\n## Reproduction (`python benchmarks/reproduce.py`)\n",
        "Quality metrics compared at the recorded 4 decimals; cost metrics are not compared.\n",
        "| verdict | rows same / compared | re-run s | date | command |",
        "|---|---|---|---|---|",
    ]
    for command, r in sorted(report.items(), key=lambda kv: (kv[1]["file"], kv[0])):
        rows = r.get("rows", [])
        same = sum(v["verdict"] in ("same", "cost-only") for v in rows)
        detail = "; ".join(
            f"{'/'.join(map(str, v['row']))}: "
            + (
                ", ".join(f"{k} {a} → {b}" for k, (a, b) in v.get("diff", {}).items())
                or v["verdict"]
            )
            for v in rows
            if v["verdict"] not in ("same", "cost-only")
        )
        verdict = r["verdict"] + (f" ({detail})" if detail else "")
        if r.get("updated"):  # a deliberate change: the re-run rows are now the recorded ones
            verdict += "; re-recorded"
        lines.append(
            f"| {verdict} | {same} / {len(rows)} | {r.get('seconds', '')} | {r['date']} | "
            f"`{command}` |"
        )
    return lines


def _changes(verdict: dict[str, Any]) -> str:
    diff = verdict.get("diff", {})
    return ", ".join(f"{k} {a} → {b}" for k, (a, b) in diff.items()) or verdict["verdict"]


def _section(stage: str, dataset: str, protocol: str, items: list[dict[str, Any]]) -> list[str]:
    peers = PEERS.get((dataset, protocol), {}) if stage in RATIO_METRIC else {}
    present = {k for r in items for k in r["metrics"]}
    keys = [k for k in MAIN_METRICS if k in present]
    extra = sorted(present - set(keys))
    target = RATIO_METRIC.get(stage, "ndcg@10")
    if peers and not any(target in p for p in peers.values()) and "auc" in present:
        target = "auc"  # e.g. published KG peers quote AUC only
    best_peer = max((p.get(target, 0.0) for p in peers.values()), default=0.0)
    ratio = best_peer > 0 and target in present
    label = f"× best peer {target}"
    head = ["model", *keys, *([label] if ratio else []), "wall s", "peak MB", "command"]
    lines = [
        f"\n## {stage} · {dataset} · `{protocol}`\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in items:
        vals = [_fmt(r["metrics"].get(k)) for k in keys]
        if ratio:
            value = r["metrics"].get(target)
            vals.append("" if value is None else f"{value / best_peer:.3f}")
        lines.append(
            f"| {r['model']} | "
            + " | ".join(vals)
            + f" | {r['wall_s']} | {r['peak_mb']} | `{r['command']}` |"
        )
    for name, p in peers.items():
        vals = [_fmt(p.get(k)) for k in keys] + ([""] if ratio else [])
        lines.append(f"| *peer {name}* | " + " | ".join(vals) + f" | {p.get('wall_s', '')} | | |")
    if extra:
        lines.append(
            "\nOther measured fields: "
            + "; ".join(
                f"**{r['model']}**: "
                + ", ".join(f"{k} {_fmt(r['metrics'][k])}" for k in extra if k in r["metrics"])
                for r in items
            )
        )
    plot = RESULTS / f"{stage}_tradeoff_{dataset}.png"
    if plot.exists():  # accuracy-vs-diversity curves written by the same benchmark
        lines.append(f"\n![{stage} trade-off, {dataset}]({plot.relative_to(ROOT)})")
    return lines


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"


def main() -> None:
    rows = [r for p in sorted(RESULTS.glob("*.json")) for r in json.loads(p.read_text())["rows"]]
    (ROOT / "BENCHMARKS.md").write_text(render(rows))
    print(f"BENCHMARKS.md: {len(rows)} rows")


if __name__ == "__main__":
    main()
