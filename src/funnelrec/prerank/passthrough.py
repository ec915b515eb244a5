"""Pass-through pre-ranker (same behaviour as the rank slot's)."""

from __future__ import annotations

from typing import ClassVar

from funnelrec.rank.passthrough import PassthroughRanker
from funnelrec.registry import PRERANK


@PRERANK.register("passthrough")
class PassthroughPreranker(PassthroughRanker):
    kind: ClassVar[str] = "prerank"
