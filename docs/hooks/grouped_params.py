"""griffe extension: Google-style ``a, b: description`` lines (one description for several
parameters, the house style for pairs such as ``offsets, items``) become one entry per name,
so the API reference lists each parameter and griffe's unknown-parameter check still works.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes):\s*$")
_GROUPED = re.compile(r"^(\s+)([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+)\s*:\s?(.*)$")


def split_grouped(text: str) -> str:
    """Rewrite ``a, b: desc`` inside Args/Attributes sections as ``a: desc`` and
    ``b: desc`` (continuation lines stay with the last name)."""
    out: list[str] = []
    section_indent: int | None = None
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            section_indent = len(header.group(1))
            out.append(line)
            continue
        if section_indent is not None and line.strip() and (
            len(line) - len(line.lstrip()) <= section_indent
        ):
            section_indent = None
        grouped = _GROUPED.match(line) if section_indent is not None else None
        if grouped:
            indent, names, desc = grouped.groups()
            out.extend(f"{indent}{name.strip()}: {desc}" for name in names.split(","))
        else:
            out.append(line)
    return "\n".join(out)


class GroupedParams(griffe.Extension):
    """Splits grouped parameter lines of every docstring before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = split_grouped(obj.docstring.value)
