"""MIND recall channel: several user interests by capsule routing, each searching the
index alone (base and merge in ``recall/_multi_interest.py``)."""

from __future__ import annotations

from pydantic import Field

from funnelrec.models.sequence import MIND
from funnelrec.recall._multi_interest import MultiInterestParams, MultiInterestRecall
from funnelrec.registry import RECALL


class MINDParams(MultiInterestParams):
    """``MultiInterestParams`` plus the number of routing ``iterations``."""

    iterations: int = Field(default=3, ge=1)


@RECALL.register("mind")
class MINDRecall(MultiInterestRecall):
    """MIND: behaviour-to-interest dynamic routing (capsules)."""

    params_model = MINDParams

    def _build_model(self) -> MIND:
        return self.build_encoder(MIND, "n_interests", "iterations")
