"""benchmarks/scale.py: ``--threads`` governs every task (the rows' ``threads`` is what ran)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scale_train_task_runs_and_records_the_threads_it_was_given() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FUNNELREC_THREADS", "OMP_NUM_THREADS")}
    cmd = [sys.executable, "benchmarks/scale.py", "--tasks", "train", "--items", "2000"]
    cmd += ["--train-models", "mf", "--train-batches", "2", "--threads", "1", "--no-write"]
    cmd += ["--train-repeat", "3"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["model"] for r in rows] == [
        "mf-train-dense",
        "mf-train-sparse",
        "mf-train-sparse-shared",
        "mf-train-sparse-shared-bf16",
        "mf-train-sparse-shared-bf16-premerged",  # the baseline of the merge in the pass
        "mf-train-sparse-shared-bf16-torch-adam",  # the baseline of the compiled lazy Adam
    ]
    assert [r["precision"] for r in rows] == ["float32"] * 3 + ["bfloat16"] * 3
    for r in rows:  # the median of three alternating rounds, with their spread
        m = r["metrics"]
        assert m["repeat"] == 3
        assert m["pairs_per_s_min"] <= m["pairs_per_s"] <= m["pairs_per_s_max"]
    # before the fix the train task ignored --threads: torch ran on every CPU, the row said so
    assert {r["metrics"]["threads"] for r in rows} == {1.0}
    assert all(r["metrics"]["cpu_per_wall"] <= 1.2 for r in rows)


def test_scale_train_task_has_a_fast_dropout_variant_for_sasrec_only() -> None:
    cmd = [sys.executable, "benchmarks/scale.py", "--tasks", "train", "--items", "2000"]
    cmd += ["--train-models", "mf,sasrec", "--train-batches", "2", "--threads", "1"]
    cmd += ["--no-write", "--seq-batch", "16", "--max-len", "10"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    fast = [r["model"] for r in rows if r["model"].endswith("fastdrop")]
    assert fast == ["sasrec-train-sparse-shared-bf16-fastdrop"]
    assert len(rows) == 13  # mf's six variants, sasrec's seven
