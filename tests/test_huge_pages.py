"""Importing funnelrec first backs large torch tensors with transparent huge pages, and
training gives the same weights with or without them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
PROBE = """
import os, funnelrec, torch
def huge_kb():
    line = next(l for l in open("/proc/self/smaps_rollup") if l.startswith("AnonHugePages"))
    return int(line.split()[1])
before = huge_kb()
table = torch.ones(32 << 20)  # 128 MB: an embedding table's size class
print(os.environ["THP_MEM_ALLOC_ENABLE"], (huge_kb() - before) // 1024)
"""


# item tables of 12k x 64 floats (3 MB): past the 2 MB size from which torch aligns huge pages
TRAIN = """
import hashlib, funnelrec
from funnelrec.data.synthetic import generate
from funnelrec.registry import RECALL
data = generate(n_users=3000, n_items=12000, n_interactions=15000)
params = {"dim": 64, "early_stop": False, "threads": 2}
models = [RECALL.get(name)(epochs=epochs, **params).fit(data)
          for name, epochs in (("two_tower", 1), ("sasrec", 1))]
states = [v for m in models for v in m.model_.state_dict().values()]
print(hashlib.md5(b"".join(v.numpy().tobytes() for v in states)).hexdigest())
"""


def _run(script: str, env_value: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return out.split()


def _probe(env_value: str | None) -> tuple[str, int]:
    out = _run(PROBE, env_value)
    return out[0], int(out[1])


@pytest.mark.skipif(
    not THP.exists() or "[never]" in THP.read_text(), reason="no transparent huge pages here"
)
def test_large_tensors_get_huge_pages_unless_the_user_said_no() -> None:
    setting, huge_mb = _probe(None)
    assert setting == "1" and huge_mb >= 64  # most of the 128 MB table
    setting, huge_mb = _probe("0")
    assert setting == "0"  # the user's choice is kept
    if "[madvise]" in THP.read_text():  # with "always" the kernel backs it anyway
        assert huge_mb == 0


def test_training_gives_the_same_weights_with_or_without_huge_pages() -> None:
    """Page size (and the 2 MB alignment that comes with it) must not move any result: a
    two-tower and a SASRec fit hash to the same weights either way."""
    with_huge, without = _run(TRAIN, None), _run(TRAIN, "0")
    assert len(with_huge) == 1 and len(with_huge[0]) == len(hashlib.md5().hexdigest())
    assert with_huge == without
