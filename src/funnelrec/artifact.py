"""Funnel artifact integrity: ``meta.json`` with a format version and a SHA-256 per file.

``Funnel.save`` writes the manifest last (``write_manifest``); ``Funnel.load`` checks it first
(``check_artifact``), so a truncated ``.npz``, a flipped byte or a broken JSON file is reported
as one ``ArtifactError`` naming the file instead of a traceback from deep inside a loader.
Artifacts written before the manifest existed (format 1) load without checksums; their
unreadable files are still named (``reading``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from funnelrec.errors import ArtifactError, NotFittedError
from funnelrec.io import write_json

FORMAT = 2  # 2: meta.json lists every file with its SHA-256; 1: no manifest
META = "meta.json"


def write_manifest(directory: Path, info: dict[str, Any]) -> None:
    """Write ``meta.json``: ``info`` plus the format version and every file's digest."""
    files = {rel: _digest(directory / rel) for rel in _files(directory) if rel != META}
    write_json(directory / META, {**info, "format": FORMAT, "files": files})


def check_artifact(directory: Path) -> dict[str, Any]:
    """Read and check ``meta.json`` and the files it lists; returns the metadata.

    Raises:
        NotFittedError: ``directory`` has no ``meta.json`` (not an artifact).
        ArtifactError: unreadable ``meta.json``, unsupported format, or a file missing or
            different from the one saved (the message names it).
    """
    path = directory / META
    if not path.is_file():
        raise NotFittedError(f"{directory} is not a funnel artifact (no {META})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{path}: corrupt artifact file ({exc}); re-fit or restore it"
        ) from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path}: corrupt artifact file (not a JSON object); re-fit it")
    version = meta.get("format", 1)
    if version not in (1, FORMAT):
        raise ArtifactError(
            f"{path}: artifact format {version!r} is not supported (this funnelrec reads "
            f"formats 1 to {FORMAT}); re-fit it with this version"
        )
    for rel, expected in dict(meta.get("files", {})).items():
        file = directory / rel
        if not file.is_file():
            raise ArtifactError(f"{file}: artifact file missing; re-fit or restore the artifact")
        if _digest(file) != expected:
            raise ArtifactError(
                f"{file}: corrupt artifact file (checksum mismatch); re-fit or restore it"
            )
    return meta


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn any failure while loading ``path`` into one ``ArtifactError`` naming it."""
    try:
        yield
    except ArtifactError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"{path}: unreadable artifact part ({first}); re-fit it") from exc


def _files(directory: Path) -> list[str]:
    out = []
    for folder, _, names in os.walk(directory):
        for name in names:
            out.append(Path(folder, name).relative_to(directory).as_posix())
    return sorted(out)


def _digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
