"""Behaviour-sequence encoders (single- and multi-interest) and training-free poolings."""

from funnelrec.models.sequence.base import SequenceEncoder, left_pad
from funnelrec.models.sequence.caser import Caser
from funnelrec.models.sequence.comirec import ComiRecSA
from funnelrec.models.sequence.gru4rec import GRU4Rec
from funnelrec.models.sequence.mind import MIND
from funnelrec.models.sequence.sasrec import SASRec

__all__ = ["MIND", "Caser", "ComiRecSA", "GRU4Rec", "SASRec", "SequenceEncoder", "left_pad"]
