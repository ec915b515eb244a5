"""Batch invariance on real data: each channel's answer for a batch of users against each
user alone (the contract tests check this on the synthetic world; real logs have ties).

    python benchmarks/batch_invariance.py --dataset amazon-beauty-seq --model usercf --users 2000
    python benchmarks/batch_invariance.py --dataset ml-100k --model als --model mf --users 600

Each channel is fitted on the ``loo`` train part (default params) and asked for ``--k`` items
for the first ``--users`` test users, once as one batch and once per user. Printed per channel:
``not_bit_identical`` (rows whose items, order or scores differ at all), ``different_items``
(rows whose item sets differ: a contract breach), ``max_score_diff``. Prints only; no rows.
"""

from __future__ import annotations

import argparse

import numpy as np
from harness import load

from funnelrec.data.splits import split
from funnelrec.registry import RECALL
from funnelrec.types import Candidates


def compare(batched: Candidates, alone: list[Candidates]) -> dict[str, float]:
    """Counts of rows of ``batched`` that differ from the matching one-row answers."""
    not_identical = different_items = 0
    worst = 0.0
    for i, one in enumerate(alone):
        (b_items, b_scores), (a_items, a_scores) = batched.row(i), one.row(0)
        same = np.array_equal(b_items, a_items) and np.array_equal(b_scores, a_scores)
        not_identical += not same
        different_items += set(b_items.tolist()) != set(a_items.tolist())
        if len(b_scores) == len(a_scores) and len(b_scores):
            worst = max(worst, float(np.abs(np.sort(b_scores) - np.sort(a_scores)).max()))
    return {
        "not_bit_identical": not_identical,
        "different_items": different_items,
        "max_score_diff": worst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--model", action="append", help="recall channel (repeatable)")
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--k", type=int, default=200)
    args = parser.parse_args()
    parts = split(load(args.dataset), "loo")
    users = parts.test_users()[: args.users]
    query = parts.test_query(users, args.k)
    for name in args.model or ["itemcf", "usercf"]:
        channel = RECALL.get(name)().fit(parts.train)
        batched = channel.retrieve(query, args.k)
        alone = [channel.retrieve(query.select(np.array([i])), args.k) for i in range(len(users))]
        print(args.dataset, name, f"users {len(users)}", compare(batched, alone), flush=True)


if __name__ == "__main__":
    main()
