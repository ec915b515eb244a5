"""funnelrec: a multi-stage recommender system (recall -> pre-rank -> rank -> re-rank)."""

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
