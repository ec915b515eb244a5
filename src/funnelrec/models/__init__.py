"""Pure ``nn.Module`` models (no training loops, no losses)."""

from funnelrec.models.layers import EmbeddingModel
from funnelrec.models.mf import MatrixFactorization
from funnelrec.models.towers import TowerSizes, TwoTower
from funnelrec.models.youtube_dnn import YoutubeDNN

__all__ = ["EmbeddingModel", "MatrixFactorization", "TowerSizes", "TwoTower", "YoutubeDNN"]
