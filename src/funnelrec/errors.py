"""Exception hierarchy: every error the library raises on purpose is a ``FunnelError``."""

from __future__ import annotations


class FunnelError(Exception):
    """Base class of all funnelrec errors."""


class ConfigError(FunnelError):
    """A funnel config (file or dict) is invalid; the message names the bad key or value."""


class DataError(FunnelError):
    """Input data is malformed; the message names file, line and column where known."""


class NotFittedError(FunnelError):
    """A stage was used before ``fit`` (or ``load``)."""


class UnknownIdError(FunnelError, KeyError):
    """An external id is not in an ``IdMap`` and the caller asked for strict lookup."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ArtifactError(DataError):
    """A saved artifact is corrupt, incomplete or of an unsupported format (names the file)."""


class DataWarning(UserWarning):
    """Input data was accepted with a change the user should know about (e.g. interactions
    naming items absent from the item table); the CLI prints it as one ``warning:`` line."""
