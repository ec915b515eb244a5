"""Text-encoding throughput with the content-hash cache: cold run, cached re-run, one change.

    python benchmarks/encode.py --dataset goodbooks-10k-meta --encoder minilm

Each phase runs in its own process (so peak memory is per phase) against one cache folder:
``cold`` (empty cache: every distinct text is encoded), ``cached`` (the same texts again: must
encode zero items and never load the model), ``change`` (100 titles edited: only those are
encoded). Rows: stage ``encode``, metrics ``items_per_s``, ``encoded``, ``encoded_on_rerun``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from typing import Any

from harness import cpu_seconds, load, row, write_rows

from funnelrec.content import VectorCache, create_encoder, extract, item_texts

TEXT_COLUMNS = {
    "goodbooks-10k-meta": ["title"],
    "ml-100k": ["title", "tags"],
    "lastfm-kg": ["title"],
}
N_CHANGED = 100


def texts_of(dataset: str) -> list[str]:
    if dataset == "lastfm-kg":  # artist names (the interaction loader is another stage's)
        from harness import data_path

        from funnelrec.data.loaders import load_lastfm_artists

        return item_texts(load_lastfm_artists(data_path(dataset)), TEXT_COLUMNS[dataset])
    return item_texts(load(dataset).items, TEXT_COLUMNS[dataset])


def phase(
    dataset: str, encoder_name: str, cache_dir: str, which: str, batch: int, threads: int
) -> None:
    """Run one phase and print its row as JSON (called in a child process)."""
    texts = texts_of(dataset)
    if which == "change":
        texts = [f"{t} (revised edition)" if i < N_CHANGED else t for i, t in enumerate(texts)]
    start, cpu0 = time.perf_counter(), cpu_seconds()
    params = {"threads": threads} if threads and encoder_name == "minilm" else {}
    encoder = create_encoder(encoder_name, params)
    cache = VectorCache(cache_dir, encoder.fingerprint, encoder.dim)
    vectors, report = extract(texts, encoder, cache, batch_size=batch, progress=True)
    wall, cpu_s = time.perf_counter() - start, cpu_seconds() - cpu0
    metrics = {"items_per_s": len(texts) / wall, "encoded": report.encoded}
    if which != "cold":
        metrics["encoded_on_rerun"] = report.encoded
    model = f"{encoder_name} ({which})"
    extra: dict[str, Any] = {
        "n_items": len(texts),
        "dim": int(vectors.shape[1]),
        "extract_items_per_s": round(report.items_per_s, 1),
        "batch_size": batch,
        "threads": threads,
    }
    print(json.dumps(row(dataset, "none", model, "encode", metrics, wall, cpu_s, **extra)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", action="append", help="repeatable")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    datasets = args.dataset or ["goodbooks-10k-meta"]
    if args.phase:
        phase(datasets[0], args.encoder, args.cache, args.phase, args.batch_size, args.threads)
        return
    rows = []
    for dataset in datasets:
        with tempfile.TemporaryDirectory() as cache:
            for which in ("cold", "cached", "change"):
                cmd = [sys.executable, sys.argv[0], "--dataset", dataset, "--encoder"]
                cmd += [args.encoder, "--batch-size", str(args.batch_size)]
                cmd += ["--threads", str(args.threads)]
                cmd += ["--phase", which, "--cache", cache]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                result["command"] = row(dataset, "", "", "", {}, 0.0)["command"]
                rows.append(result)
                print(f"{dataset} {which}: {result['metrics']} peak {result['peak_mb']} MB")
    write_rows("encode", rows)


if __name__ == "__main__":
    main()
