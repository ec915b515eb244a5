"""Render BENCHMARKS.md from benchmarks/results/*.json (numbers live only in the JSON)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
INTRO = """# Benchmarks

Rendered by `python benchmarks/render.py` from `benchmarks/results/*.json`; every row names
the command that produced it. Data: `../shared/data` (never committed). Protocols are those
of DESIGN.md. Machine: 2 cores, 24 GB, no GPU. `peak MB` is the process's peak resident memory.
"""


def render(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["stage"], r["dataset"], r["protocol"])].append(r)
    out = [INTRO]
    for (stage, dataset, protocol), items in sorted(groups.items()):
        keys = sorted({k for r in items for k in r["metrics"]}, key=_metric_order)
        out.append(f"\n## {stage} · {dataset} · `{protocol}`\n")
        out.append("| model | " + " | ".join(keys) + " | wall s | peak MB | command |")
        out.append("|---" * (len(keys) + 4) + "|")
        for r in items:
            vals = [_fmt(r["metrics"].get(k)) for k in keys]
            out.append(
                f"| {r['model']} | "
                + " | ".join(vals)
                + f" | {r['wall_s']} | {r['peak_mb']} | `{r['command']}` |"
            )
    return "\n".join(out) + "\n"


def _metric_order(key: str) -> tuple[str, int]:
    name, _, k = key.partition("@")
    return (name, int(k) if k.isdigit() else 0)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"


def main() -> None:
    rows = [r for p in sorted(RESULTS.glob("*.json")) for r in json.loads(p.read_text())["rows"]]
    (ROOT / "BENCHMARKS.md").write_text(render(rows))
    print(f"BENCHMARKS.md: {len(rows)} rows")


if __name__ == "__main__":
    main()
