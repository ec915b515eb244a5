"""Re-run recorded benchmark rows and check that they reproduce to the recorded decimals.

    python benchmarks/reproduce.py --max-wall 300            # every command recorded <= 300 s
    python benchmarks/reproduce.py --file recall --file rank # every command of these files
    python benchmarks/reproduce.py --list                    # the plan, with recorded seconds

Rows are grouped by their ``command``; each command runs once from the repository root with
``FUNNELREC_RESULTS`` pointing at a scratch folder (the recorded results are not touched),
and the rows it writes are matched to the recorded ones by (dataset, protocol, model, stage).
A row reproduces when every *quality* metric (recall, NDCG, AUC, counts, ...) equals the
recorded value at the recorded 4 decimals; cost metrics (seconds, throughput, CPU, memory,
latency) are machine- and load-dependent and are not compared. ``scale``, ``serve`` and
``index`` rows hold cost metrics only, and ``tune`` rows come from a time-budgeted search (the
trial count depends on the machine), so these files are skipped.

The report goes to ``benchmarks/results/reproduce/report.json`` (merged by command) and is
printed: ``same`` / ``differs`` (with each differing metric, recorded -> now) / ``missing``
(the command wrote no such row) / ``failed`` (non-zero exit, last stderr line).

Every row records where it was measured (``env``: library versions, CPU vector ISA). A command
that differs also prints how the environment differs from the recorded one (``env_diff``):
trained models can move in their last decimals with another BLAS, CPU or library release at
unchanged code, so a ``differs`` on a different environment is a code change only if the
earlier commit reproduces the row here. ``make bench-env`` installs the library versions the
rows were recorded with (``benchmarks/environment.lock``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = RESULTS / "reproduce" / "report.json"
COST_ONLY = ("scale", "serve", "index")
# time-budgeted searches: how many trials run depends on the machine's speed
TIME_BUDGETED = ("tune",)
KEY = ("dataset", "protocol", "model", "stage")
# ``env`` entries that say when, not on what: never compared
NOT_ENVIRONMENT = ("date", "commit")
# metrics that measure the machine, not the model: never compared
COST = re.compile(
    r"(_s|_ms|_mb|per_s|per_cpu_s|qps|speedup|cpu_per_wall|threads|time_vs_peer|"
    r"latency.*|p\d+.*|mean_batch|trials|_seconds)$|^(cpu_|wall|fit_s|ms_|p50|p99|peak)"
)


def quality_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not COST.search(k)}


def plan(files: list[str], max_wall: float | None) -> OrderedDict[str, dict[str, Any]]:
    """``command -> {file, rows, wall}`` for the recorded rows (cost-only files left out)."""
    out: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for path in sorted(RESULTS.glob("*.json")):
        name = path.stem
        if name in COST_ONLY + TIME_BUDGETED or (files and name not in files):
            continue
        for r in json.loads(path.read_text())["rows"]:
            entry = out.setdefault(r["command"], {"file": name, "rows": [], "wall": 0.0})
            entry["rows"].append(r)
            entry["wall"] += float(r.get("wall_s") or 0.0)
    if max_wall is not None:
        out = OrderedDict((c, e) for c, e in out.items() if e["wall"] <= max_wall)
    return out


def compare(recorded: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per recorded row."""
    by_key = {tuple(r[k] for k in KEY): r for r in now}
    verdicts = []
    for r in recorded:
        key = tuple(r[k] for k in KEY)
        new = by_key.get(key)
        if new is None:
            verdicts.append({"row": list(key), "verdict": "missing"})
            continue
        old_q, new_q = quality_metrics(r["metrics"]), quality_metrics(new["metrics"])
        diff = {k: [v, new_q.get(k)] for k, v in old_q.items() if new_q.get(k) != v}
        verdict = "differs" if diff else "same" if old_q else "cost-only"
        verdicts.append({"row": list(key), "verdict": verdict,
                         "compared": len(old_q), "diff": diff})  # fmt: skip
    return verdicts


def environment_diff(
    recorded: list[dict[str, Any]], now: list[dict[str, Any]]
) -> dict[str, list[str | None]] | None:
    """``{name: [recorded, now]}`` for every library version or CPU feature that differs
    between the first recorded row's ``env`` and the re-run's; ``None`` when the recorded
    row has no ``env`` (measured before rows recorded it)."""
    old = next((r["env"] for r in recorded if r.get("env")), None)
    new = next((r["env"] for r in now if r.get("env")), {})
    if old is None:
        return None
    names = sorted((set(old) | set(new)) - set(NOT_ENVIRONMENT))
    return {n: [old.get(n), new.get(n)] for n in names if old.get(n) != new.get(n)}


def run(command: str, entry: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one recorded command into a scratch results folder and compare its rows."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "FUNNELREC_RESULTS": scratch}
        argv = shlex.split(command)
        argv[0] = sys.executable
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"verdict": "timeout", "seconds": timeout}
        seconds = round(time.perf_counter() - start, 1)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            return {"verdict": "failed", "seconds": seconds, "error": tail}
        written = Path(scratch) / f"{entry['file']}.json"
        now = json.loads(written.read_text())["rows"] if written.exists() else []
    rows = compare(entry["rows"], now)
    kinds = {v["verdict"] for v in rows}
    verdict = kinds.pop() if len(kinds) == 1 else "differs" if "differs" in kinds else "mixed"
    result = {"verdict": verdict, "seconds": seconds, "rows": rows, "now": now}
    if verdict != "same":
        result["env_diff"] = environment_diff(entry["rows"], now)
    return result


def describe_environment(env_diff: dict[str, list[str | None]] | None) -> str:
    """One line: how the re-run's environment differs from the recorded one."""
    if env_diff is None:
        return "environment: not recorded with the row"
    if not env_diff:
        return "environment: the same libraries and CPU (a code change or nondeterminism)"
    return "environment: " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in env_diff.items())


def update(file: str, now: list[dict[str, Any]]) -> None:
    """Replace the recorded rows of ``file`` by the re-run ones with the same key."""
    from harness import write_rows  # benchmarks/harness.py: the one merge of rows by key

    write_rows(file, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", action="append", default=[], help="results file stem(s)")
    parser.add_argument("--max-wall", type=float, help="only commands recorded <= this many s")
    parser.add_argument("--match", help="only commands containing this text")
    parser.add_argument("--exact", help="only this command (as --list prints it)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--list", action="store_true", help="print the plan and stop")
    parser.add_argument(
        "--update",
        action="store_true",
        help="record the re-run rows of commands that differ (after a deliberate change)",
    )
    args = parser.parse_args()
    todo = plan(args.file, args.max_wall)
    if args.match:
        todo = OrderedDict((c, e) for c, e in todo.items() if args.match in c)
    if args.exact:
        todo = OrderedDict((c, e) for c, e in todo.items() if c == args.exact.strip())
    if args.list:
        for command, e in todo.items():
            print(f"{e['file']:10s} {e['wall']:8.0f} s {len(e['rows']):3d} rows  {command}")
        print(
            f"{len(todo)} commands, {sum(e['wall'] for e in todo.values()) / 60:.0f} min recorded"
        )
        return
    for command, entry in todo.items():
        result = run(command, entry, args.timeout)
        now = result.pop("now", [])
        if args.update and result["verdict"] in ("differs", "mixed", "missing") and now:
            update(entry["file"], now)
            result["updated"] = True
        # read again: another reproduce.py may have written its verdicts meanwhile
        report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
        report[command] = {"file": entry["file"], "date": time.strftime("%Y-%m-%d"), **result}
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=1) + "\n")
        print(f"{result['verdict']:8s} {result.get('seconds', 0):7.1f} s  {command}", flush=True)
        for v in result.get("rows", []):
            if v["verdict"] not in ("same", "cost-only"):
                print(f"    {v['verdict']}: {'/'.join(map(str, v['row']))} {v.get('diff', '')}")
        if "env_diff" in result:
            print(f"    {describe_environment(result['env_diff'])}")
        if result["verdict"] == "failed":
            print(f"    {result['error']}")


if __name__ == "__main__":
    main()
