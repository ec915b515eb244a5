"""ComiRec-SA recall channel: several user interests by self-attention, each searching the
index alone (base and merge in ``recall/_multi_interest.py``)."""

from __future__ import annotations

from pydantic import Field

from funnelrec.models.sequence import ComiRecSA
from funnelrec.recall._multi_interest import MultiInterestParams, MultiInterestRecall
from funnelrec.registry import RECALL


class ComiRecParams(MultiInterestParams):
    """``MultiInterestParams`` plus the attention's ``hidden`` size."""

    hidden: int = Field(default=256, ge=1)


@RECALL.register("comirec_sa")
class ComiRecSARecall(MultiInterestRecall):
    """ComiRec-SA: self-attentive multi-interest extraction."""

    params_model = ComiRecParams

    def _build_model(self) -> ComiRecSA:
        return self.build_encoder(ComiRecSA, "n_interests", "hidden")
