"""Re-rankers; importing this package registers every built-in one."""

from funnelrec.rerank import seen_filter
from funnelrec.rerank.base import Reranker

__all__ = ["Reranker", "seen_filter"]
