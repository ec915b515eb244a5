"""Shared benchmark plumbing: data location, peak memory, result rows (DESIGN.md contract)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from funnelrec.threads import ENV_VAR, apply_threads, resolve_threads
from funnelrec.train.losses import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
# FUNNELREC_RESULTS=DIR: rows and plots go to DIR instead (benchmarks/reproduce.py re-runs rows)
RESULTS = Path(os.environ.get("FUNNELREC_RESULTS") or ROOT / "benchmarks" / "results")
SHARED_DATA = ROOT.parent / "shared" / "data"

if os.environ.get(ENV_VAR):  # FUNNELREC_THREADS=N python benchmarks/...: one setting for all
    apply_threads()


def data_path(name: str) -> Path:
    """Folder of a shared dataset; exits with a clear message when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        sys.exit(f"dataset {name!r} not found at {path} (benchmarks need ../shared/data)")
    return path


def add_data_args(parser: argparse.ArgumentParser, default: str = "ml-100k") -> None:
    """``--dataset NAME`` (a folder of ../shared/data) and ``--data PATH`` (any loadable file
    or folder: it wins over ``--dataset``)."""
    parser.add_argument("--dataset", default=default, help="shared dataset name")
    parser.add_argument("--data", default=None, help="any dataset file/folder (overrides)")


def dataset_name(args: argparse.Namespace) -> str:
    """Name for result rows: the shared name, or the ``--data`` path's stem."""
    return dataset_label(getattr(args, "data", None) or args.dataset)


def dataset_label(spec: str) -> str:
    """``spec`` as a result-row name: shared names and ``synthetic-*`` as given, a path
    (``--data PATH``) as its file stem or folder name."""
    path = Path(spec).expanduser()
    if spec in {p.name for p in SHARED_DATA.glob("*")} or not path.exists():
        return spec
    return path.stem if path.is_file() else path.name


def load(name: str) -> Any:
    """Load a shared dataset by folder name, ``synthetic-<n>`` from the generator, or any
    dataset file/folder path (``load_dataset``)."""
    from funnelrec.data.loaders import load_dataset

    path = Path(name).expanduser()
    if name not in {p.name for p in SHARED_DATA.glob("*")} and path.exists():
        return load_dataset(str(path))

    if name.startswith("synthetic-"):  # synthetic-<n interactions>, e.g. synthetic-100k
        from funnelrec.data.synthetic import generate

        size = name.removeprefix("synthetic-").lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(size[-1:], 1)
        n = int(float(size.rstrip("km")) * scale)
        return generate(n_users=max(n // 50, 100), n_items=max(n // 100, 100), n_interactions=n)
    if name.startswith("synthetic"):
        return load_dataset(name)
    return load_dataset(str(data_path(name)))


def peak_mb() -> float:
    """Peak resident memory of this process so far (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU seconds used so far by this process, all threads (user + system)."""
    return time.process_time()


def command_line() -> str:
    """The command that produced the rows, relative to the repository root."""
    script = os.path.relpath(sys.argv[0], ROOT)
    return " ".join(["python", shlex.quote(script), *map(shlex.quote, sys.argv[1:])])


# libraries whose versions can move a row's last decimals (BLAS kernels, sparse products,
# tree learners): recorded with every row, with the CPU's widest vector ISA
VERSIONED = (
    "torch", "numpy", "scipy", "lightgbm", "faiss-cpu", "implicit", "polars", "scikit-learn",
)  # fmt: skip


def environment() -> dict[str, str]:
    """Where a row was measured: date, commit (``+`` when the tree had changes), library
    versions and the CPU's vector ISA. Rows are reproducible on a like environment; a
    different CPU or library release can move the last decimals of trained models."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"date": time.strftime("%Y-%m-%d")}
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "src"],
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        out["commit"] = head + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    out.update(cpu_features(cpu_flags() or set()))
    return out


def cpu_features(flags: set[str]) -> dict[str, str]:
    """``cpu_isa``: the widest vector ISA; ``cpu_matrix``: the bfloat16/fp16 and matrix
    extensions (``none`` without them), with which oneDNN and MKL can pick other kernels: two
    ``avx512f`` machines, one with AMX, can train models that differ in their last decimals
    at the same code and libraries."""
    isa = next((isa for isa in ("avx512f", "avx2", "neon") if isa in flags), "other")
    matrix = "+".join(f for f in ("avx512_bf16", "avx512_fp16", "amx_bf16") if f in flags)
    return {"cpu_isa": isa, "cpu_matrix": matrix or "none"}


def row(
    dataset: str,
    protocol: str,
    model: str,
    stage: str,
    metrics: dict[str, float],
    wall_s: float,
    cpu_s: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One result row; ``cpu_s`` (process CPU seconds over the same span as ``wall_s``, see
    ``cpu_seconds``) adds ``cpu_s``, ``cpu_per_wall`` and the ``threads`` setting to metrics,
    so "CPU / wall <= threads + 0.2" can be checked: every script passes it (the span it
    times: ``start, cpu0 = time.perf_counter(), cpu_seconds()``)."""
    if cpu_s is not None:
        metrics = {**metrics, "cpu_s": cpu_s, "cpu_per_wall": cpu_s / max(wall_s, 1e-9)}
        metrics["threads"] = resolve_threads()
    return {
        "dataset": dataset_label(dataset),
        "protocol": protocol,
        "model": model,
        "stage": stage,
        "metrics": {k.lower(): round(float(v), 4) for k, v in metrics.items()},
        "wall_s": round(wall_s, 3),
        "peak_mb": round(peak_mb(), 1),
        "command": command_line(),
        **extra,
        "env": environment(),
    }


def write_rows(script: str, rows: list[dict[str, Any]]) -> Path:
    """Merge ``rows`` into ``results/<script>.json``, replacing rows with the same key."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{script}.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    key = ("dataset", "protocol", "model", "stage")
    new_keys = {tuple(r[k] for k in key) for r in rows}
    merged = [r for r in old if tuple(r[k] for k in key) not in new_keys] + rows
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": merged}, indent=2) + "\n")
    tmp.replace(path)
    return path
