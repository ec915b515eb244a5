"""``funnelrec serve --workers N``: ``N`` worker processes behind one port (connections dealt
to them in turn by ``serve.balancer``); each builds its own app here from the ``FUNNELREC_*``
environment (the CLI puts its flags there). ``python -m funnelrec.serve.workers --channel FD``
runs one worker.

Every worker loads the artifact (its own read-only copy of the model and ANN index) and opens
the store; with a shared store (Redis, or SQLite on one host) any worker answers any user with
the latest events, and reloads / item upserts made through one reach the others
(``serve/sync.py``).
"""

from __future__ import annotations

from fastapi import FastAPI

from funnelrec.serve.app import create_app
from funnelrec.serve.settings import load_settings


def app() -> FastAPI:
    """uvicorn factory (``funnelrec.serve.workers:app``, ``factory=True``)."""
    return create_app(load_settings())


if __name__ == "__main__":
    from funnelrec.serve.balancer import worker_main

    worker_main()
