"""Content-hash cache and incremental extraction on a tiny generated catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from funnelrec.content import (
    ContentEncoder,
    VectorCache,
    create_encoder,
    encoder_names,
    extract,
    register_encoder,
)
from funnelrec.errors import ConfigError


@register_encoder("test_letters")
class LetterCounts(ContentEncoder):
    """Counts of the letters a..h (a known answer for every text); records its calls."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return 8

    @property
    def fingerprint(self) -> str:
        return f"letters:{self.scale}"

    def encode(self, inputs: Sequence[Any]) -> np.ndarray[Any, Any]:
        self.calls.append(list(inputs))
        out = [[t.count(c) * self.scale for c in "abcdefgh"] for t in inputs]
        return np.asarray(out, dtype=np.float32).reshape(len(inputs), 8)


CATALOGUE = ["abba", "cafe", "deed", "bead", "face", "hedge"]


def expected(texts: list[str]) -> np.ndarray[Any, Any]:
    return LetterCounts().encode(texts)


def test_cold_run_encodes_everything_then_rerun_hits_cache(tmp_path: Path) -> None:
    enc = LetterCounts()
    cache = VectorCache(tmp_path, enc.fingerprint, enc.dim)
    vectors, report = extract(CATALOGUE, enc, cache, batch_size=4)
    np.testing.assert_array_equal(vectors, expected(CATALOGUE))
    assert (report.encoded, report.cached, report.n_items) == (6, 0, 6)
    assert [len(c) for c in enc.calls] == [4, 2]  # batched
    # a new process: the cache is re-opened from disk, nothing is encoded
    again = LetterCounts()
    reopened = VectorCache(tmp_path, again.fingerprint, again.dim)
    assert len(reopened) == 6
    vectors2, report2 = extract(CATALOGUE, again, reopened)
    assert (report2.encoded, report2.cached) == (0, 6)
    assert again.calls == []
    np.testing.assert_array_equal(vectors2, vectors)


def test_one_changed_item_is_the_only_one_encoded(tmp_path: Path) -> None:
    enc = LetterCounts()
    cache = VectorCache(tmp_path, enc.fingerprint, enc.dim)
    before, _ = extract(CATALOGUE, enc, cache)
    changed = [*CATALOGUE]
    changed[2] = "deeded"
    enc.calls.clear()
    after, report = extract(changed, enc, cache)
    assert report.encoded == 1 and report.cached == 5
    assert enc.calls == [["deeded"]]
    np.testing.assert_array_equal(after, expected(changed))
    unchanged = np.arange(6) != 2
    np.testing.assert_array_equal(after[unchanged], before[unchanged])
    assert not np.array_equal(after[2], before[2])


def test_repeated_contents_are_encoded_once_and_cache_is_per_encoder(tmp_path: Path) -> None:
    enc = LetterCounts()
    cache = VectorCache(tmp_path, enc.fingerprint, enc.dim)
    vectors, report = extract(["abc", "abc", "fed", "abc"], enc, cache)
    assert report.encoded == 2 and enc.calls == [["abc", "fed"]]
    np.testing.assert_array_equal(vectors[3], vectors[0])
    other = LetterCounts(scale=2.0)  # another fingerprint: another cache, no hits
    other_cache = VectorCache(tmp_path, other.fingerprint, other.dim)
    doubled, report2 = extract(["abc"], other, other_cache)
    assert report2.encoded == 1
    np.testing.assert_array_equal(doubled[0], 2 * vectors[0])
    with pytest.raises(ConfigError, match=r"letters:2\.0"):
        extract(["abc"], other, cache)


def test_interrupted_append_is_truncated_on_open(tmp_path: Path) -> None:
    enc = LetterCounts()
    cache = VectorCache(tmp_path, enc.fingerprint, enc.dim)
    extract(CATALOGUE[:3], enc, cache)
    with (cache.directory / "vectors.f32").open("ab") as f:
        f.write(np.ones(8, dtype=np.float32).tobytes())  # a row whose key was never written
    reopened = VectorCache(tmp_path, enc.fingerprint, enc.dim)
    assert len(reopened) == 3
    vectors, report = extract(CATALOGUE, LetterCounts(), reopened)
    assert report.encoded == 3
    np.testing.assert_array_equal(vectors, expected(CATALOGUE))


def test_registered_encoder_is_created_by_name_and_bad_names_are_rejected() -> None:
    assert {"test_letters", "minilm", "hashing", "cnn"} <= set(encoder_names())
    enc = create_encoder("test_letters", {"scale": 3.0})
    assert isinstance(enc, LetterCounts) and enc.fingerprint == "letters:3.0"
    with pytest.raises(ConfigError, match="'nope'"):
        create_encoder("nope")
    with pytest.raises(ConfigError, match="bad params"):
        create_encoder("test_letters", {"colour": 1})
    with pytest.raises(ConfigError, match="registered twice"):
        register_encoder("test_letters")(type("Other", (LetterCounts,), {}))


def test_encoder_returning_wrong_shape_is_an_error() -> None:
    class Broken(LetterCounts):
        def encode(self, inputs: Sequence[Any]) -> np.ndarray[Any, Any]:
            return np.zeros((len(inputs), 3), dtype=np.float32)

    with pytest.raises(ValueError, match=r"expected \(2, 8\)"):
        extract(["a", "b"], Broken())
