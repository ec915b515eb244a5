"""HTTP serving of a saved funnel: ``create_app(settings)``, settings, stores."""

from funnelrec.serve.app import create_app
from funnelrec.serve.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
