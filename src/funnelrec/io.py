"""Atomic, durable artifact directories and small JSON helpers.

``atomic_dir(target)`` writes a new version of a directory so that a reader never sees a
half-written or missing ``target``, and an acknowledged save survives a crash:

1. the block writes into a hidden temporary sibling ``.<name>.tmp-<pid>-<random>``;
2. every file and directory in it is fsynced, then it is renamed to a hidden version
   ``.<name>.v<ns>-<pid>`` and the parent directory is fsynced;
3. ``target`` is a symbolic link to the current version: a new link is created beside it and
   renamed over it (``rename`` of a link is atomic), then the parent is fsynced again. At every
   instant ``target`` names a complete version (no gap between removing the old and adding the
   new one). Readers that resolve the link once (``Funnel.load``) keep a consistent version;
   the previous version is kept so that a reader resolving it just before the swap can finish.

A ``target`` that does not exist yet (a stage saved inside a new artifact) is created by one
``rename`` of the complete temporary directory: also atomic, and no link is needed
(``versioned=True`` asks for the link even then). A ``target`` that is a plain directory (an
artifact written before links were used) is moved aside and replaced by the link once; that
single migration has a gap of one ``rename``.

Stale temporary folders and versions left by a killed writer (``kill -9`` during a save) are
removed by the next save of the same target: anything hidden under the target's name that is
neither the current nor the previous version and whose writer process is gone.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_dir(target: str | os.PathLike[str], versioned: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``target`` only if the block succeeds.

    A failure inside the block leaves any previous ``target`` untouched and removes the
    temporary directory. See the module docstring for the swap and durability guarantees.

    Args:
        target: the directory to (re)write.
        versioned: make ``target`` a link to a hidden version even when it does not exist yet
            (artifacts that will be rewritten while being served).
    """
    target = Path(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        if not versioned and not target.exists() and not target.is_symlink():
            try:
                os.rename(tmp, target)  # nothing to replace: one atomic rename
                fsync_dir(parent)
                return
            except OSError:  # a concurrent writer created it first: swap a version in
                pass
        _swap_version(target, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_version(target: Path, tmp: Path) -> None:
    """Rename ``tmp`` to a new version and point ``target``'s link at it (no gap)."""
    parent = target.parent
    version = parent / f".{target.name}.v{time.time_ns():020d}-{os.getpid()}"
    os.rename(tmp, version)
    previous = os.readlink(target) if target.is_symlink() else None
    if target.exists() and previous is None:  # legacy plain directory: move it aside (once)
        previous = f".{target.name}.v{0:020d}-{os.getpid()}"
        os.rename(target, parent / previous)
    link = parent / f".{target.name}.link-{os.getpid()}-{secrets.token_hex(4)}"
    os.symlink(version.name, link)  # relative: the artifact folder can be moved or copied
    os.replace(link, target)
    fsync_dir(parent)
    _remove_old_versions(target, keep={version.name, previous or ""})


def _remove_old_versions(target: Path, keep: set[str]) -> None:
    """Drop versions of ``target`` other than ``keep`` (current and previous) whose writer is
    gone or is this process (a live writer's version may be about to become current)."""
    for path in _hidden_siblings(target):
        parsed = _parse(target, path)
        if parsed and parsed[0] == "v" and path.name not in keep and not _alive(parsed[1]):
            shutil.rmtree(path, ignore_errors=True)


def clean_stale(target: Path) -> None:
    """Remove temporary folders and links of ``target`` whose writer process is gone (left by
    a killed save), and versions that are neither current nor kept by a live writer."""
    current = os.readlink(target) if target.is_symlink() else None
    for path in _hidden_siblings(target):
        parsed = _parse(target, path)
        if parsed is None or path.name == current or _alive(parsed[1]):
            continue
        if parsed[0] == "link":
            path.unlink(missing_ok=True)
        elif parsed[0] == "tmp" or current is None:
            shutil.rmtree(path, ignore_errors=True)


def _hidden_siblings(target: Path) -> list[Path]:
    prefix = f".{target.name}."
    if not target.parent.is_dir():
        return []
    return [p for p in target.parent.iterdir() if p.name.startswith(prefix)]


_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|link|v)\d*-(?P<pid>\d+)(?:-[0-9a-f]+)?$")


def _parse(target: Path, path: Path) -> tuple[str, int] | None:
    """``(kind, writer pid)`` of a hidden sibling written by ``atomic_dir`` (else ``None``)."""
    match = _NAME.match(path.name)
    if match is None or match["name"] != target.name:
        return None
    return match["kind"], int(match["pid"])


def _alive(pid: int) -> bool:
    """Whether another process ``pid`` still runs (this process: no, its saves are done)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (directories after their entries)."""
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that renames and new entries in it are durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON (UTF-8, indented) through a temporary file and rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_mapping_file(path: Path, what: str = "config") -> dict[str, Any]:
    """A TOML / YAML / JSON file whose top level is a mapping; errors are ``ConfigError``s
    naming the file (missing, unknown suffix, parse error, not a mapping)."""
    import tomllib

    import yaml

    from funnelrec.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            raise ConfigError(f"{path}: {what} file must be .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return raw
