"""mkdocs hook: one API reference page per package of ``src/funnelrec``, generated at build time.

Every public module (no ``_`` in its dotted path, except ``__init__``) gets a mkdocstrings
``::: module`` block on its package's page (top-level modules on ``core``), so a module that
is added, moved or renamed shows up without editing the docs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "funnelrec"
SKIP = {"funnelrec.__main__"}


def public_modules() -> dict[str, list[str]]:
    """``{page: [dotted module, ...]}``: top-level modules under ``core``, each subpackage
    (with its nested packages) on its own page, modules sorted by path."""
    pages: dict[str, list[str]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts[1:]):
            continue
        name = ".".join(parts)
        if name in SKIP or name == PACKAGE:
            continue
        page = "core" if len(parts) == 2 and path.name != "__init__.py" else parts[1]
        pages.setdefault(page, []).append(name)
    return dict(sorted(pages.items(), key=lambda kv: (kv[0] != "core", kv[0])))


def _page(page: str, modules: list[str]) -> str:
    title = f"{PACKAGE} (core modules)" if page == "core" else f"{PACKAGE}.{page}"
    blocks = "\n\n".join(f"::: {m}" for m in modules)
    return f"# {title}\n\n{blocks}\n"


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    nav = config.nav if config.nav is not None else []
    nav.append({"API reference": [{p: f"reference/{p}.md"} for p in public_modules()]})
    config.nav = nav
    return config


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    for page, modules in public_modules().items():
        files.append(File.generated(config, f"reference/{page}.md", content=_page(page, modules)))
    return files
