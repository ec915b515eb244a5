"""Online serving latency: the whole funnel behind uvicorn on loopback, 50 concurrent clients.

    python benchmarks/serve.py --dataset ml-100k --config configs/ml-100k.toml --duration 20
    python benchmarks/serve.py --dataset synthetic-1m-items --duration 20   # ANN recall
    # A/B: a baseline checkout's src against this one, alternating, median of 3 runs each
    python benchmarks/serve.py --config configs/ml-100k.toml --baseline ../base/src --repeat 3

Protocol ``online``: the funnel is fitted on the whole dataset (nothing is held out: this measures
speed, not quality), saved, and served by ``funnelrec serve`` in its own process (SQLite store;
``--workers N``: N server processes sharing it). A closed-loop load generator (``wrk`` when
installed, else asyncio httpx clients) keeps ``--clients`` requests in flight for ``--duration``
seconds, each ``GET /recommend?user_id=<random known user>&k=10``. Reported: client-side p50/p99
latency, requests/s, the server's CPU time per request (``cpu_ms_per_request``, also
``server_cpu_ms_per_request``: comparable on a busy machine, unlike latency), each stage's time per
request (``ms_per_request_<stage>``, printed as a breakdown of the CPU per request; the rest is
HTTP, JSON and the event loop), and per-stage p99 from the server's Prometheus histograms
(``p99_ms_<stage>``, interpolated within buckets; stages run once per micro-batch, ``http`` is the
server-side request time). Each run prints how the load generator's connections are spread over
the server processes (sampled 2 s in, from ``/proc``); ``connection_share_max`` is the largest
share one process held (0.5 = even with two workers).

``--floor``: after each candidate run, the same load against ``http_floor.py``, a bare ASGI app
under uvicorn (one process, the server's uvicorn defaults) answering every request with one
real ``/recommend`` response body: ``floor_cpu_ms_per_request`` (also ``floor_p99_ms``,
``floor_qps``) is what the HTTP stack alone costs, the part of ``cpu_ms_per_request`` that no
change to funnelrec can remove.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from harness import ROOT, load, row, write_rows
from prometheus_client.parser import text_string_to_metric_families

from funnelrec.config import load_config, parse_config
from funnelrec.pipeline import Funnel
from funnelrec.registry import RECALL
from funnelrec.serve.model import instrument
from funnelrec.serve.settings import load_settings, server_threads
from funnelrec.threads import apply_threads

ANN_CHANNELS = ("two_tower", "youtube_dnn", "mf")  # embedding channels served through an index


WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("FUNNELREC_BENCH_USERS")) do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "/recommend?k=10&user_id=" .. ids[math.random(#ids)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_load(
    url: str, users: list[str], clients: int, duration: float, work: Path
) -> dict[str, Any]:
    """Closed-loop load with ``wrk`` (2 threads, ``clients`` connections)."""
    (work / "users.txt").write_text("\n".join(users) + "\n")
    (work / "load.lua").write_text(WRK_SCRIPT)
    cmd = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{max(int(duration), 1)}s"]
    cmd += ["--timeout", "10s", "-s", str(work / "load.lua"), url]
    env = {**os.environ, "FUNNELREC_BENCH_USERS": str(work / "users.txt")}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    stats = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    return {
        "p50_ms": stats["p50_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000,
        "qps": stats["requests"] / (stats["duration_us"] / 1e6),
        "requests": stats["requests"],
        "errors": stats["errors"],
    }


def http_load(url: str, users: list[str], clients: int, duration: float) -> dict[str, Any]:
    """Closed-loop load with ``clients`` asyncio httpx tasks (when wrk is absent)."""
    return asyncio.run(_http_load(url, users, clients, duration))


async def _http_load(url: str, users: list[str], clients: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def worker(seed: int, deadline: float) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    params = {"user_id": rng.choice(users), "k": 10}
                    ok = (await client.get("/recommend", params=params)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i, start + duration) for i in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000  # noqa: E731
    return {
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "qps": len(latencies) / elapsed,
        "requests": len(latencies) + errors,
        "errors": errors,
    }


def scrape(url: str, workers: int) -> list[str]:
    """The ``/metrics`` text of every server process (each keeps its own registry): over
    fresh connections, which the balancer deals to the workers in turn, until every
    process's pid (``/health`` on the same keep-alive connection) has answered."""
    texts: dict[int, str] = {}
    for _ in range(20 * workers):
        with httpx.Client(base_url=url, timeout=10) as client:
            pid = int(client.get("/health").json()["pid"])
            texts.setdefault(pid, client.get("/metrics").text)
        if len(texts) == workers:
            return [texts[pid] for pid in sorted(texts)]
    sys.exit(f"/metrics reached {len(texts)} of {workers} server processes")


def _samples(texts: list[str]) -> Iterator[Any]:
    """Every sample of every process's exposition."""
    for text in texts:
        for family in text_string_to_metric_families(text):
            yield from family.samples


def _buckets(texts: list[str]) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts per stage (and ``http`` for /recommend), summed over the
    server processes."""
    out: dict[str, dict[float, float]] = {}
    for sample in _samples(texts):
        if sample.name == "funnelrec_stage_seconds_bucket":
            key = sample.labels["stage"]
        elif (
            sample.name == "funnelrec_http_request_seconds_bucket"
            and sample.labels.get("route") == "/recommend"
        ):
            key = "http"
        else:
            continue
        counts = out.setdefault(key, {})
        bound = float(sample.labels["le"])
        counts[bound] = counts.get(bound, 0.0) + sample.value
    return out


def stage_quantiles(before: list[str], after: list[str], q: float) -> dict[str, float]:
    """Per-stage ``q`` quantile in ms of the observations between two scrapes (linear
    interpolation inside the bucket, as Prometheus' ``histogram_quantile``)."""
    old, new = _buckets(before), _buckets(after)
    out = {}
    for stage, buckets in new.items():
        bounds = sorted(buckets)
        counts = [buckets[b] - old.get(stage, {}).get(b, 0.0) for b in bounds]
        total = counts[-1]
        if total <= 0:
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for bound, count in zip(bounds, counts, strict=True):
            if count >= rank:
                upper = bound if math.isfinite(bound) else lower
                share = (rank - below) / (count - below) if count > below else 1.0
                out[stage.replace(":", "_")] = round((lower + (upper - lower) * share) * 1000, 3)
                break
            lower, below = bound, count
    return out


def _stage_sums(texts: list[str]) -> dict[str, float]:
    """Seconds spent so far in each funnel stage (sum of ``funnelrec_stage_seconds`` over
    the server processes)."""
    out: dict[str, float] = {}
    for sample in _samples(texts):
        if sample.name == "funnelrec_stage_seconds_sum":
            stage = sample.labels["stage"]
            out[stage] = out.get(stage, 0.0) + sample.value
    return out


def mean_batch(before: list[str], after: list[str]) -> float:
    """Mean micro-batch size of the funnel runs between two scrapes."""
    sums: list[dict[str, float]] = []
    for texts in (before, after):
        found = {"sum": 0.0, "count": 0.0}
        for sample in _samples(texts):
            for part in found:
                if sample.name == f"funnelrec_recommend_batch_size_{part}":
                    found[part] += sample.value
        sums.append(found)
    runs = sums[1]["count"] - sums[0]["count"]
    return (sums[1]["sum"] - sums[0]["sum"]) / runs if runs > 0 else 0.0


def stage_ms_per_request(before: list[str], after: list[str], requests: int) -> dict[str, float]:
    """Milliseconds of each stage per request between two scrapes: the stage's time in the
    funnel threads summed over micro-batches and processes, over the requests served (about
    its CPU time: a funnel thread computes, it does not wait)."""
    old, new = _stage_sums(before), _stage_sums(after)
    n = max(requests, 1)
    return {s.replace(":", "_"): (v - old.get(s, 0.0)) * 1000 / n for s, v in new.items()}


def stage_cpu_ms(artifact: Path, users: list[str], n: int = 300) -> dict[str, float]:
    """CPU milliseconds of each funnel stage for one request (a batch of one, the serving
    path's ``Funnel.run`` timed with ``time.process_time``: all threads), averaged over ``n``
    known users, in this process: a per-stage CPU breakdown that machine load does not skew.
    The thread pools are sized as the server sizes its own (``Settings.threads``)."""
    apply_threads(server_threads(load_settings(artifacts=artifact)), export=False)
    funnel = Funnel.load(artifact)
    timings: dict[str, float] = {}
    instrument(funnel, timings, clock=time.process_time)
    picks = random.Random(0).choices(users, k=n + 20)
    for i, user in enumerate(picks):
        if i == 20:  # warm-up done
            timings.clear()
            start = time.process_time()
        funnel.run(funnel.query_for([user]))
    total = time.process_time() - start
    out = {stage.replace(":", "_"): s * 1000 / n for stage, s in timings.items()}
    out["merge_and_cuts"] = max(total * 1000 / n - sum(out.values()), 0.0)
    out["funnel"] = total * 1000 / n
    return out


def print_breakdown(cpu_ms: float, stages: dict[str, float]) -> None:
    """The server's CPU per request under load (micro-batched), then each stage's CPU for a
    request served alone (a batch of one) and its share of that funnel run."""
    funnel = max(stages["funnel"], 1e-9)
    print(f"server CPU per request under load: {cpu_ms:.3f} ms", file=sys.stderr)
    print(f"funnel CPU for one request alone: {funnel:.3f} ms, by stage:", file=sys.stderr)
    for stage, ms in sorted(stages.items(), key=lambda kv: -kv[1]):
        if stage != "funnel":
            print(f"  {stage:<28} {ms:7.3f} ms  {ms / funnel:6.1%}", file=sys.stderr)


def synthetic_1m_config() -> dict[str, Any]:
    """Funnel for the 1,000,000-item catalogue: an embedding channel on an HNSW index."""
    ann = next((c for c in ANN_CHANNELS if c in RECALL.names()), None)
    if ann is None:
        sys.exit("synthetic-1m-items needs an embedding (ANN) recall channel: pending")
    params = {"index": "hnsw", "epochs": 1, "early_stop": False, "dim": 32, "batch_size": 8192}
    return {
        "k": 10,
        "recall": {
            "total": 300,
            "channels": [{"name": "popular"}, {"name": "fresh"}, {"name": ann, "params": params}],
        },
        "prerank": {"keep": 200},
        "rank": {"keep": 50},
        "rerank": [{"name": "seen_filter"}],
    }


def fit_artifact(dataset: str, config: str, out: Path) -> tuple[list[str], float]:
    """Fit on the whole dataset, save to ``out``; returns the user ids and the fit time
    (an existing artifact at ``out`` is reused: fit time 0)."""
    if (out / "meta.json").is_file():
        ids = json.loads((out / "data" / "ids.json").read_text())["users"]["ids"]
        return [str(u) for u in ids], 0.0
    if dataset == "synthetic-1m-items":
        from funnelrec.data.synthetic import generate

        data = generate(n_users=20_000, n_items=1_000_000, n_interactions=400_000, name=dataset)
        funnel_config = parse_config(synthetic_1m_config())
    else:
        data = load(dataset)
        funnel_config = load_config(config)
    start = time.perf_counter()
    Funnel(funnel_config).fit(data).save(out)
    return [str(u) for u in data.user_ids.ids], time.perf_counter() - start


def start_server(
    artifact: Path, store: str, port: int, workers: int = 1, source: Path | None = None
) -> subprocess.Popen[bytes]:
    """``funnelrec serve`` in its own process; ``source``: serve that checkout's ``src``
    (``PYTHONPATH``) instead of the installed package (a baseline)."""
    cmd = [sys.executable, "-m", "funnelrec.cli", "serve", "--artifacts", str(artifact)]
    cmd += ["--store", store, "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "FUNNELREC_LOG_LEVEL": "warning"}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return wait_healthy(subprocess.Popen(cmd, env=env), port)


def start_floor(body: Path, port: int) -> subprocess.Popen[bytes]:
    """``http_floor.app`` under uvicorn (one process, ``funnelrec serve``'s uvicorn defaults)
    answering every request with the bytes of ``body``."""
    cmd = [sys.executable, "-m", "uvicorn", "http_floor:app", "--app-dir", str(ROOT / "benchmarks")]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
    cmd += ["--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "FUNNELREC_FLOOR_BODY": str(body)}
    return wait_healthy(subprocess.Popen(cmd, env=env), port)


def wait_healthy(proc: subprocess.Popen[bytes], port: int) -> subprocess.Popen[bytes]:
    """``proc`` once ``GET /health`` on ``port`` answers 200 (exits if it never does)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("server did not become healthy")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server's worker processes)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return out


def server_peak_mb(pid: int) -> float:
    """Largest peak resident memory among the server's processes."""
    peaks = [0.0]
    for p in process_tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of the server's processes."""
    total = 0.0
    for p in process_tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def connections_per_process(pids: list[int], port: int) -> list[int]:
    """Established TCP connections to ``port`` held by each of ``pids`` (from ``/proc``:
    which server process serves how many of the load generator's connections)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                inodes.add(f"socket:[{inode}]")
    counts = []
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:  # exited, or a descriptor closed while listing
            continue
        counts.append(sum(link in inodes for link in links))
    return sorted((c for c in counts if c), reverse=True)


def measure(
    url: str, users: list[str], args: argparse.Namespace, work: Path, pid: int
) -> dict[str, Any]:
    """Warm up, run the load, read the server's stage histograms and CPU time."""
    http_load(url, users[:200], clients=8, duration=2.0)  # warm-up (imports, caches)
    baseline = scrape(url, args.workers)
    cpu = cpu_seconds(pid)
    split: list[int] = []  # sampled once the load generator's connections are all open
    sampler = threading.Timer(
        min(2.0, args.duration / 2),
        lambda: split.extend(connections_per_process(process_tree(pid), args.port)),
    )
    sampler.start()
    result = run_load(url, users, args, work)
    sampler.join()
    result["connections"] = split
    result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(result["requests"], 1)
    after = scrape(url, args.workers)
    result["stages"] = stage_quantiles(baseline, after, 0.99)
    result["stage_ms"] = stage_ms_per_request(baseline, after, result["requests"])
    result["mean_batch"] = mean_batch(baseline, after)
    return result


def run_load(url: str, users: list[str], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The closed-loop load of ``args`` (wrk when chosen or installed, else httpx)."""
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if use_wrk:
        result = wrk_load(url, users, args.clients, args.duration, work)
    else:
        result = http_load(url, users, args.clients, args.duration)
    result["loadgen"] = "wrk" if use_wrk else "httpx"
    return result


def measure_floor(
    users: list[str], args: argparse.Namespace, work: Path, body: bytes
) -> dict[str, Any]:
    """The HTTP floor (``http_floor``): the same load against a bare uvicorn app answering
    every request with ``body``; its CPU per request, p99 and requests/s."""
    (work / "floor.json").write_bytes(body)
    proc = start_floor(work / "floor.json", args.port)
    try:
        url = f"http://127.0.0.1:{args.port}"
        http_load(url, users[:200], clients=8, duration=1.0)  # warm-up
        cpu = cpu_seconds(proc.pid)
        result = run_load(url, users, args, work)
        result["cpu_ms"] = (cpu_seconds(proc.pid) - cpu) * 1000 / max(result["requests"], 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median CPU per request (the lower one of an even count), its latencies
    and rate kept together."""
    return sorted(runs, key=lambda r: r["cpu_ms"])[(len(runs) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--config", default=str(ROOT / "configs" / "ml-100k.toml"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--artifacts", type=Path, help="reuse (or create) the fitted funnel here")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout's src folder served as the baseline, alternating with this one",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (median kept)")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="after each candidate run, the same load on a bare uvicorn app (http_floor.py)",
    )
    args = parser.parse_args()
    start, own_cpu = time.perf_counter(), time.process_time()
    sides: list[Path | None] = ([args.baseline] if args.baseline else []) + [None]
    runs: dict[Path | None, list[dict[str, Any]]] = {side: [] for side in sides}
    floors: list[dict[str, Any]] = []
    body = b""  # a real /recommend response (the floor's answer)
    server_cpu = peak = 0.0
    with tempfile.TemporaryDirectory(prefix="funnelrec-serve-") as tmp:
        work = Path(tmp)
        artifact = args.artifacts or work / "artifact"
        users, fit_s = fit_artifact(args.dataset, args.config, artifact)
        for i in range(args.repeat):
            for side in sides:  # baseline and candidate alternate: drifts hit both alike
                store = f"sqlite:///{work / f'store-{i}-{side is None}.db'}"
                proc = start_server(artifact, store, args.port, args.workers, side)
                try:
                    url = f"http://127.0.0.1:{args.port}"
                    run = measure(url, users, args, work, proc.pid)
                    runs[side].append(run)
                    name = "candidate" if side is None else f"baseline {side}"
                    print(
                        f"run {i + 1} {name}: {run['cpu_ms']:.3f} ms CPU/request, p50 "
                        f"{run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, "
                        f"{run['qps']:.0f} requests/s, mean batch {run['mean_batch']:.1f}, "
                        f"connections per server process {run['connections']}",
                        file=sys.stderr,
                    )
                    peak = max(peak, server_peak_mb(proc.pid))
                    server_cpu += cpu_seconds(proc.pid)
                    if args.floor and side is None:
                        params = {"user_id": users[0], "k": 10}
                        body = httpx.get(f"{url}/recommend", params=params).content
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                if args.floor and side is None:  # a reference: its CPU is not in cpu_s
                    floors.append(measure_floor(users, args, work, body))
                    print(
                        f"run {i + 1} HTTP floor: {floors[-1]['cpu_ms']:.3f} ms CPU/request, "
                        f"p99 {floors[-1]['p99_ms']:.1f} ms, {floors[-1]['qps']:.0f} requests/s",
                        file=sys.stderr,
                    )
        cpu_stages = stage_cpu_ms(artifact, users)  # the server is gone: no contention
    result = median_run(runs[None])
    metrics = {k: result[k] for k in ("p50_ms", "p99_ms", "qps")}
    if args.repeat > 1:
        cpus = [r["cpu_ms"] for r in runs[None]]
        metrics.update(cpu_ms_per_request_min=min(cpus), cpu_ms_per_request_max=max(cpus))
    if args.baseline:
        base = median_run(runs[args.baseline])
        metrics.update(
            baseline_cpu_ms_per_request=base["cpu_ms"],
            baseline_p99_ms=base["p99_ms"],
            baseline_qps=base["qps"],
            cpu_vs_baseline=result["cpu_ms"] / base["cpu_ms"],
        )
    metrics["server_cpu_ms_per_request"] = result["cpu_ms"]
    metrics["cpu_ms_per_request"] = result["cpu_ms"]
    metrics["mean_batch"] = result["mean_batch"]
    if result["connections"]:  # the largest share of the connections one process held
        metrics["connection_share_max"] = max(result["connections"]) / sum(result["connections"])
    metrics["server_threads"] = server_threads(load_settings(artifacts=artifact), args.workers)
    metrics.update({f"p99_ms_{s}": v for s, v in result["stages"].items()})
    metrics.update({f"ms_per_request_{s}": v for s, v in result["stage_ms"].items()})
    print_breakdown(result["cpu_ms"], cpu_stages)
    if floors:
        floor = median_run(floors)
        metrics.update(floor_cpu_ms_per_request=floor["cpu_ms"], floor_p99_ms=floor["p99_ms"])
        metrics["floor_qps"] = floor["qps"]
        print(
            f"HTTP floor (a bare uvicorn app answering a {len(body)}-byte /recommend body, "
            f"same load): {floor['cpu_ms']:.3f} ms CPU/request",
            file=sys.stderr,
        )
    metrics.update({f"cpu_ms_{s}": v for s, v in cpu_stages.items()})
    model = "synthetic-1m" if args.dataset == "synthetic-1m-items" else Path(args.config).stem
    if args.workers > 1:
        model += f"-{args.workers}-workers"
    cpu_s = time.process_time() - own_cpu + server_cpu  # this process (fit) + the server
    r = row(args.dataset, "online", model, "serve", metrics, time.perf_counter() - start, cpu_s)
    r.update(
        peak_mb=round(peak, 1),
        fit_s=round(fit_s, 3),
        clients=args.clients,
        duration_s=args.duration,
        requests=result["requests"],
        errors=result["errors"],
        repeat=args.repeat,
        loadgen=result["loadgen"],
        cpus=os.cpu_count(),
        workers=args.workers,
    )
    print(json.dumps(r, indent=2))
    if not args.no_write:
        write_rows("serve", [r])


if __name__ == "__main__":
    main()
