"""Matrix-factorisation recall: user/item embeddings trained with BPR (or sampled softmax)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.mf import MatrixFactorization
from funnelrec.recall._embedding import EmbeddingParams, EmbeddingRecall
from funnelrec.registry import RECALL


class MFParams(EmbeddingParams):
    """``EmbeddingParams`` plus ``item_bias`` (folded into the vectors for retrieval).

    Defaults: BPR with one uniform negative, early stopping on the internal loo split, then
    ``refit`` on all the data for the best number of epochs, small initialisation
    (``init_std=0.03``; BPR is sensitive to it).

    Why ``refit`` (issue #24): an MF user vector is learned, not folded in, so without a refit
    it never sees the user's last training interaction (the internal validation item). Under
    ``loo`` that is the most informative event, and MF-BPR trailed the BPR peers by 10-45%
    mostly for that reason (benchmarks/embedding.py: ml-100k NDCG@10 0.0603 -> 0.0668 with
    the refit and train + validation, Beauty 0.0097 -> 0.0187). On ml-100k validation every
    other change scored lower: ``l2`` 1e-5/1e-4, ``dim`` 128, ``item_bias``, ``n_neg`` 4,
    Adagrad, ``init_std`` 0.01, ``lr`` 0.002.
    """

    init_std: float = Field(default=0.03, gt=0)
    item_bias: bool = False
    refit: bool = True


@RECALL.register("mf")
class MFRecall(EmbeddingRecall[MFParams]):
    """Classic MF: known users only (unknown users get an empty row); no history fold-in."""

    params_model = MFParams
    example_params: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 2,
        "batch_size": 512,
        "threads": 1,
    }

    def _build_model(self) -> MatrixFactorization:
        p = self.params
        return MatrixFactorization(
            self.sizes_["n_users"], self.sizes_["n_items"], p.dim, p.item_bias, p.init_std
        )
