"""In-memory speed tasks of ``scale.py``: training throughput vs catalogue size (``train``)
and full-ranking evaluation of many users (``eval``).

    FUNNELREC_THREADS=2 python benchmarks/scale.py --tasks train --items 10000,200000,1000000
    FUNNELREC_THREADS=2 python benchmarks/scale.py --tasks eval --eval-users 100000

``train``:
One in-memory synthetic log per catalogue size: 20k users with 5-99 events each (about 1M
events), items drawn from a power law (Zipf exponent 0.8), so the batches look alike whatever
the catalogue; only the tables grow. ``--train-repeat R``: R rounds, each variant once per
round, alternating; a row holds the median round (``pairs_per_s_min``/``_max``: the spread).
Each model trains ``--train-batches`` batches through
``train.loop.fit`` exactly as its channel does (dim 64, Adam, sampled softmax over the batch's
distinct positives plus ``--n-extra`` shared negatives, log-Q corrected), once with dense
gradients (every step touches every row: the old path) and once with sparse ones (lazy Adam,
``sparse_grad``), then with shared negatives (``--in-batch``) and those with the softmax's
products on bfloat16 inputs (``precision="bfloat16"``, model names ending ``-bf16``), side by
side in one process. ``pairs_per_s`` counts training pairs (two-tower,
MF) or next-item targets (SASRec) per wall second; ``pairs_per_cpu_s`` per CPU second (the
figure to read on a loaded machine); ``speedup`` = sparse / dense pairs per second.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import torch
from harness import cpu_seconds, row
from torch import Tensor, nn

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import split
from funnelrec.eval.protocol import evaluate
from funnelrec.models.mf import MatrixFactorization
from funnelrec.models.sequence.sasrec import SASRec
from funnelrec.models.towers import TowerSizes, TwoTower
from funnelrec.recall.mf import MFRecall
from funnelrec.train import sparse as sparse_training
from funnelrec.train.adam_rows import merged_rows
from funnelrec.train.data import PairBatches
from funnelrec.train.loop import fit
from funnelrec.train.losses import RetrievalLoss
from funnelrec.train.negatives import NegativeSampler
from funnelrec.train.sequence import NextItemLoss, SequenceBatches

DIM = 64
N_USERS = 20_000


def synthetic_log(n_items: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(offsets [U+1], items [N], counts [n_items])``: power-law item draws per user."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(5, 100, N_USERS)
    offsets = ragged.offsets_from_lengths(lens)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, int(offsets[-1]), p=pop / pop.sum()).astype(np.int64)
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    return offsets, items, counts


Setup = tuple[
    nn.Module, Callable[..., Iterator[dict[str, Tensor]]], Any, Callable[[dict[str, Tensor]], int]
]


def _setup(kind: str, n_items: int, args: argparse.Namespace, fast_dropout: bool = False) -> Setup:
    """Model, batch function, loss and "pairs in a batch" for one model kind
    (``fast_dropout``: SASRec's counter-based dropout masks)."""
    offsets, items, counts = synthetic_log(n_items)
    extra = NegativeSampler(n_items, None, counts, 0.0)
    prob = torch.as_tensor(counts / counts.sum()).float()
    extra_prob = torch.as_tensor(extra.prob).float()
    if kind == "sasrec":
        model: nn.Module = SASRec(n_items, DIM, args.max_len, fast_dropout=fast_dropout)
        seqs = SequenceBatches(
            offsets, items, args.seq_batch, args.max_len, "causal", extra, args.n_extra
        )
        loss: Any = NextItemLoss(
            "sampled", n_items, batch_prob=prob, extra_prob=extra_prob, temperature=1.0
        )
        return model, seqs, loss, lambda b: int((b["target"] >= 0).sum())
    history = 20 if kind == "two_tower" else 0
    pairs = PairBatches(
        offsets,
        items,
        args.batch_size,
        max_history=history,
        extra_sampler=extra,
        n_extra=args.n_extra,
    )
    if kind == "two_tower":
        model = TwoTower(TowerSizes(n_users=0, n_items=n_items), DIM, use_user_id=False)
        temperature = 0.1
    else:
        model = MatrixFactorization(N_USERS, n_items, DIM)
        temperature = 1.0
    loss = RetrievalLoss("softmax", temperature=temperature, batch_prob=prob, extra_prob=extra_prob)
    return model, pairs, loss, lambda b: len(b["item"])


def measure(
    kind: str,
    n_items: int,
    sparse: bool,
    in_batch: int | None,
    args: argparse.Namespace,
    precision: str = "float32",
    adam: str = "compiled",
    fast_dropout: bool = False,
) -> dict[str, float]:
    """Pairs per wall and CPU second over ``args.train_batches`` batches (after one warm-up).
    ``adam``: lazy Adam's row update ``compiled`` (``train.adam_rows``, repeated rows merged
    in the compiled pass), ``premerged`` (the same pass given the gradient merged first by
    ``merged_rows``: unique + a zero-filled block + ``index_add_``, the path before the merge
    moved into the pass) or ``torch`` (torch ops, the path before ``train.adam_rows``)."""
    model, batches, loss, count = _setup(kind, n_items, args, fast_dropout)
    loss.in_batch = in_batch
    loss.precision = precision
    done = [0]
    clock: list[float] = []

    def timed(epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        for i, batch in enumerate(itertools.islice(batches(epoch, rng), args.train_batches + 1)):
            if i == 1:  # the first batch warms up (allocations, optimiser state)
                clock.extend([time.perf_counter(), cpu_seconds()])
            if i >= 1:
                done[0] += count(batch)
            yield batch

    supported, update = sparse_training.fused_supported, sparse_training.update_rows

    def premerged(param: Tensor, avg: Tensor, avg_sq: Tensor, grad: Tensor, *rest: Any) -> None:
        rows, merged = merged_rows(grad)
        update(param, avg, avg_sq, torch.sparse_coo_tensor(
            rows[None], merged, grad.shape, is_coalesced=True), *rest)  # fmt: skip

    patched = lambda p: adam != "torch" and supported(p)  # noqa: E731
    rows_update = premerged if adam == "premerged" else update
    with (
        mock.patch.object(sparse_training, "fused_supported", patched),
        mock.patch.object(sparse_training, "update_rows", rows_update),
    ):
        fit(model, timed, loss, epochs=1, lr=1e-3, sparse=sparse)
    wall, cpu = time.perf_counter() - clock[0], cpu_seconds() - clock[1]
    return {
        "pairs_per_s": done[0] / wall,
        "pairs_per_cpu_s": done[0] / cpu,
        "wall": wall,
        "cpu": cpu,
    }


def run_train(args: argparse.Namespace, n_items: int) -> list[dict[str, Any]]:
    """Rows for every model kind at one catalogue size, its variants side by side: ``dense``
    (the old path), ``sparse`` (sparse gradients), ``sparse-shared`` (also ``in_batch``:
    the first ``--in-batch`` positives and the extra negatives are every row's negatives) and
    ``sparse-shared-bf16`` (also ``precision="bfloat16"``: the softmax's products on bfloat16
    inputs); ``sparse-shared-bf16-premerged`` is the last with the repeated rows merged before
    the compiled update (the baseline of merging them inside it) and
    ``sparse-shared-bf16-torch-adam`` with lazy Adam's row update in torch ops (the baseline
    of ``train.adam_rows``'s compiled update, which the sparse variants use); SASRec also
    ``sparse-shared-bf16-fastdrop`` (``sparse-shared-bf16`` with counter-based dropout masks,
    ``fast_dropout``)."""
    rows = []
    variants = (
        # name, sparse gradients, shared negatives, precision, lazy Adam's update, fast dropout
        ("dense", False, None, "float32", "compiled", False),
        ("sparse", True, None, "float32", "compiled", False),
        ("sparse-shared", True, args.in_batch, "float32", "compiled", False),
        ("sparse-shared-bf16", True, args.in_batch, "bfloat16", "compiled", False),
        ("sparse-shared-bf16-premerged", True, args.in_batch, "bfloat16", "premerged", False),
        ("sparse-shared-bf16-torch-adam", True, args.in_batch, "bfloat16", "torch", False),
        ("sparse-shared-bf16-fastdrop", True, args.in_batch, "bfloat16", "compiled", True),
    )
    for kind in args.train_models.split(","):
        own = [v for v in variants if kind == "sasrec" or not v[-1]]  # only SASRec drops out
        # --train-repeat rounds, each variant once per round (alternating: the VM's drift
        # lands on every variant alike); the row keeps the median round's figures
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in own}
        for _ in range(args.train_repeat):
            for name, sparse, shared, precision, adam, fast in own:
                run = measure(kind, n_items, sparse, shared, args, precision, adam, fast)
                rounds[name].append(run)
        runs = {name: _median_run(ms) for name, ms in rounds.items()}
        base = runs["dense"]["pairs_per_s"]
        for name, m in runs.items():
            metrics = {
                "pairs_per_s": m["pairs_per_s"],
                "pairs_per_cpu_s": m["pairs_per_cpu_s"],
                "repeat": args.train_repeat,
                "pairs_per_s_min": min(r["pairs_per_s"] for r in rounds[name]),
                "pairs_per_s_max": max(r["pairs_per_s"] for r in rounds[name]),
                "n_items": n_items,
                "batch_size": args.seq_batch if kind == "sasrec" else args.batch_size,
                "n_extra": args.n_extra,
                "in_batch": args.in_batch if name.startswith("sparse-shared") else 0,
                "dim": DIM,
                "batches": args.train_batches,
                "speedup": m["pairs_per_s"] / base,
            }
            rows.append(
                row(
                    dataset_name(n_items),
                    "stream",
                    f"{kind}-train-{name}",
                    "recall",
                    metrics,
                    m["wall"],
                    cpu_s=m["cpu"],
                    precision="bfloat16" if "bf16" in name else "float32",
                )
            )
    return rows


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median ``pairs_per_s`` (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["pairs_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def dataset_name(n_items: int) -> str:
    return (
        f"synthetic-{n_items // 1000}k-items"
        if n_items < 10**6
        else f"synthetic-{n_items // 10**6}m-items"
    )


def untrained_mf(data: Dataset) -> MFRecall:
    """An ``mf`` channel with its initial (random) vectors indexed, as ``fit`` leaves it but
    without the training epochs."""
    channel = MFRecall(dim=DIM)
    channel._prepare(data, [])
    channel.model_ = channel._new_model()
    channel.fit_log_ = {}
    channel.index_ = channel._item_index(channel.model_, channel._indexable(data), "exact")
    return channel


def run_eval(args: argparse.Namespace, n_users: int) -> list[dict[str, Any]]:
    """Full-ranking ``loo`` evaluation of an ``mf`` channel (exact index) over ``n_users``
    users with 5-39 events each on a ``--eval-items`` catalogue (power law). The vectors are
    untrained (random): the cost of ranking every item for every user does not depend on them,
    so the quality metrics of this row mean nothing; ``users_per_s`` is the figure."""
    rng = np.random.default_rng(0)
    lens = rng.integers(5, 40, n_users)
    pop = 1.0 / np.arange(1, args.eval_items + 1) ** 0.8
    items = rng.choice(args.eval_items, int(lens.sum()), p=pop / pop.sum())
    frame = pl.DataFrame({
        "user_id": np.repeat(np.arange(n_users), lens), "item_id": items,
        "timestamp": np.arange(len(items), dtype=np.float64),
    })  # fmt: skip
    parts = split(Dataset.from_frame(frame), "loo")
    channel = untrained_mf(parts.train)
    start, cpu = time.perf_counter(), cpu_seconds()
    result = evaluate(lambda q: channel.retrieve(q, q.k), parts, ks=(10, 50, 200))
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    metrics = {"users_per_s": n_users / wall, "users": n_users, "n_items": args.eval_items,
               "ndcg@10": result.metrics["ndcg@10"]}  # fmt: skip
    name = f"synthetic-{n_users // 1000}k-users"
    return [row(name, "loo", "mf-untrained-eval", "recall", metrics, wall, cpu_s=cpu)]


COLD_PAUSE_S = 12.0  # idle before a cold fit: this VM hands freed memory back to its host


def _cold_and_warm(fit: Callable[[], Any], n_events: int) -> tuple[dict[str, float], Any]:
    """Events per wall and CPU second of a cold fit and of a warm one right after it.

    On this machine (a VM with free-page reporting) memory a process touches for the first
    time, or again a few seconds after freeing it, costs extra wall time to fault in from
    the host (not CPU time). ``COLD_PAUSE_S`` of
    idle first makes every cold fit pay that, whichever model ran before it; the warm fit
    measures the algorithm (its peak memory already mapped)."""
    time.sleep(COLD_PAUSE_S)
    out: dict[str, float] = {}
    result = None
    for label in ("", "_warm"):
        start, cpu = time.perf_counter(), cpu_seconds()
        result = fit()
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        out[f"events_per_s{label}"] = n_events / wall
        out[f"events_per_cpu_s{label}"] = n_events / cpu
        out[f"fit_s{label}"] = wall
    return out, result


def run_itemcf_memory(args: argparse.Namespace, n_items: int) -> list[dict[str, Any]]:
    """Item-CF fitted in memory on the ``train`` task's synthetic log (about 1M events over
    ``n_items`` items), side by side with the peer ``implicit`` item-KNN (``CosineRecommender``,
    ``K = n_neighbours``) on the same user × item matrix, both under the same thread setting.
    funnelrec's graph is the sequential window only (``global_weight = 0``, as the streamed
    rows); implicit's is the all-pairs co-occurrence ``XᵀX``: different graphs, same input.

    Each model fits twice (``_cold_and_warm``): ``events_per_s`` is the cold fit (what a
    one-off fit in a fresh process sees on this VM), ``events_per_s_warm`` the second."""
    from implicit.nearest_neighbours import CosineRecommender  # benchmark-only peer (bench)

    from funnelrec.recall.itemcf import ItemCFRecall

    offsets, items, _ = synthetic_log(n_items)
    users = ragged.row_ids(offsets)
    frame = pl.DataFrame({"user_id": users, "item_id": items,
                          "timestamp": np.arange(len(items), dtype=np.float64)})  # fmt: skip
    data = Dataset.from_frame(frame)
    matrix = data.user_item.tocsr()
    n_events = len(items)

    def ours() -> ItemCFRecall:
        return ItemCFRecall(global_weight=0.0).fit(data)

    def peer() -> CosineRecommender:
        model = CosineRecommender(K=ItemCFRecall().params.n_neighbours)
        model.fit(matrix, show_progress=False)
        return model

    rows = []
    for name, fit_model in (("itemcf-memory", ours), ("peer-implicit-itemknn-memory", peer)):
        metrics, model = _cold_and_warm(fit_model, n_events)
        nnz = model.similarity_.nnz if name == "itemcf-memory" else model.similarity.nnz
        metrics.update({"events": n_events, "nnz": nnz})
        wall = metrics["fit_s"]
        cpu = n_events / metrics["events_per_cpu_s"]
        rows.append(row(dataset_name(n_items), "stream", name, "recall", metrics, wall, cpu_s=cpu))
    ours_row, peer_row = rows[0]["metrics"], rows[1]["metrics"]
    for key in ("events_per_s", "events_per_s_warm"):
        ours_row[f"{key}_vs_peer"] = round(ours_row[key] / peer_row[key], 4)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--eval-users", default="100000", help="users evaluated (eval)")
    parser.add_argument("--eval-items", type=int, default=20_000)
    parser.add_argument("--items", default="10000,200000,1000000", help="catalogue sizes (train)")
    parser.add_argument("--train-models", default="two_tower,mf,sasrec")
    parser.add_argument("--train-batches", type=int, default=30)
    parser.add_argument(
        "--train-repeat", type=int, default=1, help="train: rounds over the variants (median)"
    )
    parser.add_argument("--n-extra", type=int, default=1024)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--seq-batch", type=int, default=128)
    parser.add_argument("--in-batch", type=int, default=512, help="sparse-shared variant")
