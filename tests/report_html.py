"""Parse a report's HTML (stdlib ``html.parser``): tables by id, images, every URL-bearing
attribute and the tags used — for the report tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html.parser import HTMLParser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Parsed:
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    section_ids: list[str] = field(default_factory=list)

    def column(self, table: str, header: str) -> dict[str, str]:
        """First column → the named column's cell, for one table."""
        rows = self.tables[table]
        at = rows[0].index(header)
        return {row[0]: row[at] for row in rows[1:]}


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.out = Parsed()
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.out.tags.add(tag)
        self.out.urls += [v for k, v in a.items() if k in ("src", "href", "action", "data")]
        if tag == "section":
            self.out.section_ids.append(a.get("id", ""))
        elif tag == "table":
            self._table = a.get("id", f"table-{len(self.out.tables)}")
            self.out.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            src = a.get("src", "")
            prefix = "data:image/png;base64,"
            self.out.images[a.get("id", "")] = (
                base64.b64decode(src[len(prefix) :]) if src.startswith(prefix) else b""
            )

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.out.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_report(text: str) -> Parsed:
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.out


def assert_self_contained(parsed: Parsed) -> None:
    """No script, stylesheet link, frame or remote URL: the file opens without network."""
    assert not parsed.tags & {"script", "link", "iframe", "object", "embed"}, parsed.tags
    remote = [u for u in parsed.urls if not u.startswith("data:")]
    assert not remote, remote[:5]
    for name, data in parsed.images.items():
        assert data.startswith(PNG_MAGIC), f"image {name!r} is not an inline PNG"
