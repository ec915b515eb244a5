"""Regenerate the docs' screenshots (committed under docs/img/).

    python docs/screenshots.py [--users 2000 --interactions 100000] [--cache demo.pkl]

1. ``docs/img/demo.svg``: ``funnelrec demo``'s terminal output (rich's SVG export of the
   very console the command prints to).
2. ``docs/img/trace-notebook.png``: a ``FunnelTrace`` as a notebook shows it
   (``_repr_html_``), rendered by headless Chromium (Debian's ``chromium`` through
   Playwright; ``FUNNELREC_CHROMIUM`` to point elsewhere).
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from funnelrec import cli, demo

IMG = Path(__file__).resolve().parent / "img"
PAGE = """<!doctype html><meta charset="utf-8">
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
  margin: 12px; background: white">
<div style="font-family: monospace; color: #555; margin-bottom: 6px">In [7]: trace</div>
{body}</body>"""


def demo_svg(result: demo.DemoResult, out: Path) -> None:
    """Run ``funnelrec demo`` on an already computed result into a recording console."""
    console = Console(record=True, width=92, force_terminal=True, color_system="truecolor")
    cli.core.console = console
    original = demo.run_demo
    demo.run_demo = lambda *args, **kwargs: result  # type: ignore[assignment]
    try:
        res = CliRunner().invoke(cli.app, ["demo", "--quiet"])
        assert res.exit_code == 0, res.output
    finally:
        demo.run_demo = original
    console.save_svg(str(out), title="funnelrec demo")


def trace_png(result: demo.DemoResult, out: Path) -> None:
    """Screenshot of the trace's notebook rendering."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("FUNNELREC_CHROMIUM") or shutil.which("chromium")
    html = PAGE.format(body=result.trace._repr_html_())
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_file = Path(tmp) / "trace.html"
        page_file.write_text(html, encoding="utf-8")
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 400}, device_scale_factor=1)
        page.goto(page_file.as_uri())
        page.locator("body").screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, help="pickle of the demo result: reused if present")
    args = parser.parse_args()
    IMG.mkdir(exist_ok=True)
    if args.cache is not None and args.cache.is_file():
        result = pickle.loads(args.cache.read_bytes())
    else:
        result = demo.run_demo(args.users, args.interactions)
        if args.cache is not None:
            args.cache.write_bytes(pickle.dumps(result))
    demo_svg(result, IMG / "demo.svg")
    trace_png(result, IMG / "trace-notebook.png")
    for name in ("demo.svg", "trace-notebook.png"):
        print(f"{IMG / name}: {(IMG / name).stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
