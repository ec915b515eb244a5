"""CTR ranking models (pure ``nn.Module``s over a ``Batch``), one file per family.

``build_model(name, schema, config)`` creates one by name: ``lr``, ``fm``, ``widedeep``,
``deepfm``, ``dcnv2``, ``xdeepfm``, ``autoint``, ``din``, ``twotower``.
"""

from __future__ import annotations

from funnelrec.batch import Schema
from funnelrec.models.ctr.autoint import AutoInt
from funnelrec.models.ctr.base import CTRConfig, CTRModel
from funnelrec.models.ctr.dcn import DCNv2
from funnelrec.models.ctr.deepfm import DeepFM
from funnelrec.models.ctr.din import DIN
from funnelrec.models.ctr.fm import FM
from funnelrec.models.ctr.lr import LR
from funnelrec.models.ctr.twotower import TwoTowerCTR
from funnelrec.models.ctr.widedeep import WideDeep
from funnelrec.models.ctr.xdeepfm import XDeepFM

CTR_MODELS: dict[str, type[CTRModel]] = {
    "lr": LR,
    "fm": FM,
    "widedeep": WideDeep,
    "deepfm": DeepFM,
    "dcnv2": DCNv2,
    "xdeepfm": XDeepFM,
    "autoint": AutoInt,
    "din": DIN,
    "twotower": TwoTowerCTR,
}


def build_model(name: str, schema: Schema, config: CTRConfig | None = None) -> CTRModel:
    """A fresh model of architecture ``name`` for batches laid out as ``schema``."""
    try:
        cls = CTR_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown CTR model {name!r}; known: {', '.join(CTR_MODELS)}") from None
    return cls(schema, config or CTRConfig())


__all__ = ["CTR_MODELS", "CTRConfig", "CTRModel", "build_model"]
