"""funnelrec: a multi-stage recommender system (recall -> pre-rank -> rank -> re-rank)."""

import os

# PyTorch backs tensors of >= 2 MB with transparent huge pages when this is set before its
# first allocation (numpy already does so for its large arrays). Training updates random rows
# of embedding tables: with 4 KB pages every row of a 1M-item table is a TLB miss
# (benchmarks/scale.py --tasks train: two-tower at 1M items 1.6x the pairs/s). A value the
# user set wins; importing torch before funnelrec leaves torch's default.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from funnelrec.errors import ConfigError, DataError, FunnelError, NotFittedError, UnknownIdError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "FunnelError",
    "NotFittedError",
    "UnknownIdError",
    "__version__",
]
