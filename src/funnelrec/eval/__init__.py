"""Offline evaluation: metrics, protocols, funnel (per-stage) evaluation and reports."""
