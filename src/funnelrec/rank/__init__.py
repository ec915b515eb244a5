"""Rankers; importing this package registers every built-in ranker."""

from funnelrec.rank import passthrough
from funnelrec.rank.base import Scorer

__all__ = ["Scorer", "passthrough"]
