"""Importing funnelrec first backs large torch tensors with transparent huge pages."""

from __future__ import annotations

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


def _probe(env_value: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
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
