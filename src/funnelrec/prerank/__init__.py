"""Pre-rankers (coarse ranking); importing this package registers every built-in one."""

from funnelrec.prerank import passthrough

__all__ = ["passthrough"]
