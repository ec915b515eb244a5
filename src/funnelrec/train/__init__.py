"""Training: one generic loop (``loop.fit``), losses, negative sampling, batches, features."""

from funnelrec.train.loop import EpochLog, FitResult, fit

__all__ = ["EpochLog", "FitResult", "fit"]
