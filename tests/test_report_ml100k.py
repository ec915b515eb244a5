"""The report for MovieLens-100K (real data; skipped when ``../shared/data`` is absent): it
opens without network access and holds the funnel chart and the tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from funnelrec.config import load_config
from funnelrec.data.loaders import load_dataset
from funnelrec.pipeline import Funnel
from funnelrec.report import build_report
from tests.report_html import assert_self_contained, parse_report

ROOT = Path(__file__).resolve().parents[1]


def test_ml100k_report_offline_with_funnel_chart_and_tables(
    shared_data: Path, tmp_path: Path
) -> None:
    path = shared_data / "ml-100k"
    if not path.is_dir():
        pytest.skip("ml-100k is not in ../shared/data")
    dataset = load_dataset(str(path))
    artifact = tmp_path / "ml100k"
    Funnel(load_config(ROOT / "configs" / "ml-100k.toml")).fit(dataset).save(artifact)
    out = tmp_path / "report.html"
    report = build_report([artifact], dataset, out, "loo")

    html = parse_report(out.read_text(encoding="utf-8"))
    assert_self_contained(html)
    assert len(html.images["funnel-chart"]) > 10_000
    data = html.column("data-table", "value")
    assert (data["users"], data["items"], data["interactions"]) == ("943", "1,682", "100,000")
    kept = html.column("funnel-table", "ml100k: test items kept")
    channels = [s for s in kept if s.startswith("recall:")]
    assert channels == [
        f"recall:{c}" for c in ("itemcf", "usercf", "tag", "popular", "high_ctr", "fresh")
    ]
    assert float(kept["recall"]) >= float(kept["recall:itemcf"]) > 0.3
    final = html.column("metrics-table-0", "value")
    assert float(final["recall@20"]) == pytest.approx(float(kept["rerank"]), abs=1e-4)
    run = report.runs[0]
    assert run.funnel.n_users == 943
    assert float(final["ndcg@10"]) == pytest.approx(run.funnel.metrics["ndcg@10"], abs=1e-4)
    # ratings give a second objective; every stage orders test items above the rest
    objectives = html.column("objective-table-0", "rank")
    assert set(objectives) == {"test item", "rating >= 4"}
    assert float(objectives["test item"]) > 0.6
