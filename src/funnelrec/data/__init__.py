"""Data layer: id maps, the ``Dataset`` container, splits, loaders and the synthetic world."""

from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap

__all__ = ["Dataset", "IdMap"]
