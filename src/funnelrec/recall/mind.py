"""MIND recall channel: several user interests by capsule routing, each searching the
index alone (base and merge in ``recall/_multi_interest.py``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.sequence import MIND
from funnelrec.recall._multi_interest import (
    MULTI_INTEREST_EXAMPLE,
    MultiInterestParams,
    MultiInterestRecall,
)
from funnelrec.registry import RECALL


class MINDParams(MultiInterestParams):
    """``MultiInterestParams`` plus the number of routing ``iterations``."""

    iterations: int = Field(default=3, ge=1)


@RECALL.register("mind")
class MINDRecall(MultiInterestRecall):
    """MIND: behaviour-to-interest dynamic routing (capsules)."""

    params_model = MINDParams
    example_params: ClassVar[dict[str, Any]] = MULTI_INTEREST_EXAMPLE

    def _build_model(self) -> MIND:
        p = self.params
        return MIND(
            self.sizes_["n_items"], p.dim, p.max_len, n_interests=p.n_interests,
            iterations=p.iterations, **self.model_kwargs(),
        )  # fmt: skip
