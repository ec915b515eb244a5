"""Recall channels; importing this package registers every built-in channel."""

from funnelrec.recall import popular
from funnelrec.recall.base import RecallChannel

__all__ = ["RecallChannel", "popular"]
