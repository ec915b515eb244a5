"""Matrix-factorisation recall: user/item embeddings trained with BPR (or sampled softmax)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.mf import MatrixFactorization
from funnelrec.recall._embedding import EmbeddingParams, EmbeddingRecall
from funnelrec.registry import RECALL


class MFParams(EmbeddingParams):
    """``EmbeddingParams`` plus ``item_bias`` (folded into the vectors for retrieval).

    Defaults: BPR with one uniform negative, ``lr`` 0.005 at ``batch_size`` 2048, ``l2``
    1e-3 on the batch's (touched) user and item rows, early stopping on the internal loo
    split with ``patience`` 10, then ``refit`` on all the data for the best number of epochs,
    small initialisation (``init_std=0.03``; BPR is sensitive to it).

    Why ``refit`` (issue #24): an MF user vector is learned, not folded in, so without a refit
    it never sees the user's last training interaction (the internal validation item). Under
    ``loo`` that is the most informative event (ml-100k NDCG@10 0.0603 -> 0.0668, Beauty
    0.0097 -> 0.0187 in benchmarks/embedding.py).

    Why ``l2`` and ``patience`` 10 (issue #24, what still separated it from implicit's BPR,
    which regularises every touched row and runs 100 epochs): the validation curve of
    constant-rate Adam jitters by about ±0.004 NDCG@10 from epoch to epoch, so ``patience``
    5 stopped 3 of 4 seeds in their first plateau (best epochs 7-13), and a penalty, which
    slows the climb, was stopped even earlier -- that is why ``l2`` once looked harmful.
    Scored as a whole procedure (fit on the train part with its own early stopping and refit,
    NDCG@10 on the validation part, mean of seeds 0-3, ml-100k): ``l2`` 0 / patience 5
    0.0666, ``l2`` 0 / 10 0.0671, ``l2`` 1e-3 / 5 0.0597, ``l2`` 3e-4 / 10 0.0657,
    **1e-3 / 10 0.0698**, 3e-3 / 10 0.0687; with ``l2`` 0 / 10, ``item_bias`` 0.0608,
    ``dim`` 128 0.0631, ``lr`` 0.002 0.0668, batch 8192 (``lr`` 0.01) 0.0650 scored lower and
    ``n_neg`` 4 0.0697 about the same. implicit draws its negative ∝ item popularity;
    ``neg_alpha`` 1 scored lower here (inner split, seed 0: 0.0637 vs 0.0746).
    """

    lr: float = Field(default=0.005, gt=0)
    batch_size: int = Field(default=2048, ge=2)
    l2: float = Field(default=1e-3, ge=0)
    patience: int = Field(default=10, ge=1)
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
