"""Command line: ``funnelrec demo | fit | evaluate | recommend | serve | report | profile |
init | tune | export | refit | simulate``.

Thin typer commands over the library, one module per command group: ``core`` (demo, fit,
evaluate, recommend), ``autoconf`` (profile, init, tune), ``serve``, ``report``, ``loop``
(export, refit, simulate); ``common`` holds the typer ``app``, the consoles and the shared
options. Errors print one clear line and exit non-zero; ``--json`` prints machine-readable
output.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

# the command modules register on ``app``; their order is the order of ``--help``
# isort: off
from funnelrec.cli import core, autoconf, serve, report, loop  # noqa: F401

# isort: on
from funnelrec.cli.common import app, refuse_overwrite
from funnelrec.errors import DataWarning, FunnelError

__all__ = ["app", "main", "refuse_overwrite"]


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Data warnings as one ``warning: ...`` line; others as Python prints them."""
    if issubclass(category, DataWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, *args, **kwargs)


_python_showwarning = warnings.showwarning


def main() -> None:
    """Entry point: usage errors are typer's; library errors become one clear line."""
    warnings.showwarning = _show_warning
    try:
        app()
    except (FunnelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
