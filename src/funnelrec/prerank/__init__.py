"""Prerank stages; importing this package registers every module in it (one stage per file)."""

from funnelrec.registry_autoload import import_submodules

import_submodules(__name__, __path__)
