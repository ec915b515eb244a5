"""Prometheus metrics of one app (its own ``CollectorRegistry``: no process-global state).

``funnelrec_http_requests_total{route,method,status}``, ``funnelrec_http_request_seconds{route}``
(histogram), ``funnelrec_stage_seconds{stage}`` (histogram per funnel stage and batch:
``store``, ``recall:<channel>``, ``merge``, ``prerank``, ``rank``, ``rerank:<name>``,
``funnel``), ``funnelrec_recommend_batch_size``, ``funnelrec_events_total``,
``funnelrec_reloads_total{outcome}`` and ``funnelrec_model_generation``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
    0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The app's collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "funnelrec_http_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "funnelrec_http_request_seconds",
            "HTTP request latency (server side)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "funnelrec_stage_seconds",
            "Time spent in each funnel stage per batch",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "funnelrec_recommend_batch_size",
            "Requests per funnel batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.events = Counter("funnelrec_events", "Events stored", registry=r)
        self.reloads = Counter("funnelrec_reloads", "Model reloads", ["outcome"], registry=r)
        self.generation = Gauge("funnelrec_model_generation", "Served model generation", registry=r)

    def observe_stages(self, timings: Mapping[str, float]) -> None:
        for stage, seconds in timings.items():
            self.stage.labels(stage).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """Exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts requests and times them per route template (``unmatched`` for 404s)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
