"""Evaluation reports: one self-contained HTML file (inline PNG plots, no network) with the
dataset summary, the funnel chart, per-stage metric tables, accuracy vs diversity/coverage,
per-objective AUC, training curves and a side-by-side comparison of several runs."""

from funnelrec.report.build import build_report, evaluate_run
from funnelrec.report.html import render_html

__all__ = ["build_report", "evaluate_run", "render_html"]
