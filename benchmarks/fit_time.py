"""Wall and CPU seconds of one full-funnel fit on a dataset's ``loo`` train part (no eval).

python benchmarks/fit_time.py amazon-beauty-seq configs/amazon-beauty-init.toml
"""

from __future__ import annotations

import sys
import time

from harness import cpu_seconds, load

from funnelrec.config import load_config
from funnelrec.data.splits import split
from funnelrec.pipeline import Funnel

if __name__ == "__main__":
    config = load_config(sys.argv[2])
    parts = split(load(sys.argv[1]), "loo")
    start, cpu0 = time.perf_counter(), cpu_seconds()
    funnel = Funnel(config).fit(parts.train, valid=parts.valid)
    oof_s = getattr(funnel, "fit_log_", {}).get("oof_s")
    print("fit_s", time.perf_counter() - start, "cpu_s", cpu_seconds() - cpu0, "oof_s", oof_s)
