"""LambdaMART pre-ranker ``lambdamart``: the ``lambdamart`` ranker (``rank/lambdamart.py``) in
the pre-rank slot (configure it light: few trees and leaves)."""

from __future__ import annotations

from typing import ClassVar

from funnelrec.rank.lambdamart import LambdaMARTRanker
from funnelrec.registry import PRERANK


@PRERANK.register("lambdamart")
class LambdaMARTPreranker(LambdaMARTRanker):
    """The same model in the pre-rank slot (configure it light: few trees and leaves)."""

    kind: ClassVar[str] = "prerank"
