"""``Funnel``: recall channels → merge → pre-rank → rank → re-rank chain → ``Slate``.

Built from a ``FunnelConfig``; stages come from the registries, so adding a stage never
touches this file. ``run`` returns the full ``FunnelTrace``; ``recommend`` only the slate.
``save``/``load`` write one artifact directory atomically (resolved config, dataset with id
maps, every stage).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import polars as pl

from funnelrec import __version__, preflight, stacking
from funnelrec.artifact import check_artifact, reading, write_manifest
from funnelrec.config import FunnelConfig, load_config, save_config
from funnelrec.context import FitContext, fit_stage
from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import ExternalId, IdMap, coerce_ids
from funnelrec.data.persist import load_dataset_dir, save_dataset
from funnelrec.errors import ConfigError, DataError, NotFittedError
from funnelrec.io import atomic_dir, write_json
from funnelrec.rank.base import Scorer
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import PRERANK, RANK, RECALL, RERANK
from funnelrec.rerank.base import ListsFn, Reranker
from funnelrec.trace import FunnelTrace
from funnelrec.train.examples import Examples
from funnelrec.types import Candidates, Query, Slate


class Funnel:
    """The four-stage recommender built from a config."""

    def __init__(self, config: FunnelConfig, memo: stacking.FitMemo | None = None) -> None:
        """``memo``: fitted channels and training lists to share with other funnels fitted
        on the same data (``funnelrec tune``); none by default."""
        self.config = config.resolved()
        self.memo = memo or stacking.FitMemo.none()
        rc = self.config.recall
        self.channels: dict[str, RecallChannel[Any]] = {
            c.id: RECALL.create(c.name, c.params) for c in rc.channels
        }
        self.preranker: Scorer[Any] = PRERANK.create(
            self.config.prerank.name, self.config.prerank.params
        )
        self.ranker: Scorer[Any] = RANK.create(self.config.rank.name, self.config.rank.params)
        self.rerankers: list[Reranker[Any]] = [
            RERANK.create(r.name, r.params) for r in self.config.rerank
        ]
        self.dataset_: Dataset | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> Funnel:
        return cls(load_config(path))

    # -- training -------------------------------------------------------------------------
    def fit(self, dataset: Dataset, valid: Dataset | None = None) -> Self:
        """Fit every stage on ``dataset``: recall first, then the learned stages on the
        training lists ``[fit]`` asks for (out-of-fold by default, see ``stacking``): the
        ranker, then the pre-ranker (it gets the fitted ranker as ``ctx.teacher``), then the
        re-rankers.

        ``valid`` (optional, e.g. a split's validation part): interactions after ``dataset``
        that label the funnel's lists for early stopping and learned re-rankers; never the
        test part.
        """
        preflight.ensure(self.config, dataset)  # every data problem at once, before any fit
        fc = self.config.fit
        self.fit_log_: dict[str, Any] = {"stacking": fc.stacking}
        oof: Examples | None = None
        if fc.stacking == "oof" and self._learns_from_lists():
            start = time.perf_counter()
            oof = self._oof_examples(dataset)
            self.fit_log_["oof_s"] = round(time.perf_counter() - start, 3)
        for c in self.config.recall.channels:
            self.channels[c.id] = self.memo.get(
                stacking.channel_key(c, dataset), _fitting(self.channels[c.id], dataset)
            )
        self.dataset_ = dataset
        ctx = self._fit_context(dataset, valid, oof)
        # the ranker first: the pre-ranker may distil it (``ctx.teacher``)
        fit_stage(self.ranker, dataset, ctx)
        fit_stage(self.preranker, dataset, dataclasses.replace(ctx, teacher=self.ranker))
        for i, reranker in enumerate(self.rerankers):
            fit_stage(reranker, dataset, dataclasses.replace(ctx, lists=self._lists(i)))
        return self

    def _oof_examples(self, dataset: Dataset) -> Examples:
        """Out-of-fold training lists (through the memo; its fold log is kept with them)."""
        fc, rc, seed = self.config.fit, self.config.recall, self.config.seed

        def build() -> tuple[Examples, dict[str, Any]]:
            log: dict[str, Any] = {}
            examples = stacking.oof_examples(
                dataset, rc, fc, seed, log, self.memo, self.config.exclude_seen
            )
            return examples, log

        key = ("oof", dataset.fingerprint, stacking.config_key(rc), stacking.config_key(fc),
               seed, self.config.exclude_seen)  # fmt: skip
        examples, log = self.memo.get(key, build)
        self.fit_log_.update(log)
        return examples

    def _learns_from_lists(self) -> bool:
        """Whether a pre-ranker or ranker is learned (anything but the pass-through)."""
        return self.config.prerank.name != "passthrough" or self.config.rank.name != "passthrough"

    def _fit_context(
        self, dataset: Dataset, valid: Dataset | None, oof: Examples | None
    ) -> FitContext:
        """The context of the stages after recall: channels, lists, validation lists."""
        fc, seed = self.config.fit, self.config.seed
        cache: dict[str, Examples | None] = {}

        def examples() -> Examples:
            if "train" not in cache:
                cache["train"] = oof if oof is not None else stacking.insample_examples(
                    dataset, self.recall, fc, seed, self.fit_log_
                )  # fmt: skip
            out = cache["train"]
            assert out is not None
            return out

        def valid_examples() -> Examples | None:
            if "valid" not in cache:
                key = (
                    "valid", dataset.fingerprint, valid.fingerprint if valid else None,
                    stacking.config_key(self.config.recall), self.config.exclude_seen,
                )  # fmt: skip
                cache["valid"] = self.memo.get(
                    key, lambda: stacking.valid_examples(dataset, valid, self.recall)
                )
            return cache["valid"]

        return FitContext(
            channels=self.channels, retrieve=self.recall, examples=examples,
            valid_examples=valid_examples, valid=valid, tasks=self.config.tasks,
            stacking=fc.stacking,
        )  # fmt: skip

    def _lists(self, upto: int) -> ListsFn:
        """``query -> candidates``: the lists re-ranker ``upto`` receives."""

        def lists(query: Query) -> Candidates:
            return self._rerank_chain(query, self._ranked(query)[-1], upto)[-1][1]

        return lists

    def _context(self, upto: int, valid: Dataset | None, refit: bool = False) -> FitContext:
        """Fitting context of re-ranker ``upto``: channels and the lists it will receive."""
        return FitContext(channels=self.channels, lists=self._lists(upto), valid=valid,
                          refit=refit)  # fmt: skip

    # -- inference -----------------------------------------------------------------------
    @property
    def dataset(self) -> Dataset:
        if self.dataset_ is None:
            raise NotFittedError("Funnel is not fitted: call fit(dataset) or Funnel.load(dir)")
        return self.dataset_

    def retrieve_channels(self, query: Query) -> dict[str, Candidates]:
        """Every channel's raw candidates (quota × overfetch items each)."""
        if not self.config.exclude_seen:
            query = query.without_exclusions()
        return stacking.retrieve_channels(self.channels, self.config.recall, query)

    def recall(self, query: Query) -> Candidates:
        """The merged recall set for ``query`` (with every channel's evidence)."""
        per_channel = self.retrieve_channels(query)
        return stacking.annotate(query, self._merge(per_channel), per_channel, self.channels)

    def _merge(self, per_channel: dict[str, Candidates]) -> Candidates:
        return stacking.merge_channels(self.config.recall, per_channel)

    @property
    def reads_channel_evidence(self) -> bool:
        """Whether the pre-ranker, ranker or a re-ranker reads the merged set's per-channel
        evidence (``Stage.reads_channel_evidence``)."""
        stages = [self.preranker, self.ranker, *self.rerankers]
        return any(stage.reads_channel_evidence for stage in stages)

    def run(self, query: Query, evidence: bool = True) -> FunnelTrace:
        """Run every stage for a batch of queries and keep each stage's output.

        ``evidence = False`` skips the per-channel evidence of the merged set when no stage
        reads it (``reads_channel_evidence``): the same slate and scores, a trace without
        the ``ch:``/``cs:``/``sim_*`` stage scores (serving without ``explain``)."""
        self.dataset  # noqa: B018 - raises NotFittedError when unfitted
        per_channel, merged, pre, ranked = self._ranked(query, evidence)
        steps = self._rerank_chain(query, ranked, len(self.rerankers))
        slate = Slate.of(steps[-1][1].truncate(query.k))
        steps = steps[1:]
        return FunnelTrace(
            channels=per_channel,
            merged=merged,
            prerank=pre,
            rank=ranked,
            rerank_steps=steps,
            slate=slate,
            dataset=self.dataset,
            user_idx=query.user_idx,
        )

    def _ranked(
        self, query: Query, evidence: bool = True
    ) -> tuple[dict[str, Candidates], Candidates, Candidates, Candidates]:
        """Per-channel candidates, merged set (with the channels' evidence unless neither
        ``evidence`` nor a stage asks for it), pre-rank and rank outputs (after their cuts)."""
        per_channel = self.retrieve_channels(query)
        merged = self._merge(per_channel)
        if evidence or self.reads_channel_evidence:
            merged = stacking.annotate(query, merged, per_channel, self.channels)
        pre = self.preranker.score(query, merged).truncate(self.config.prerank.keep)
        ranked = self.ranker.score(query, pre).truncate(self.config.rank.keep)
        return per_channel, merged, pre, ranked

    def _rerank_chain(
        self, query: Query, ranked: Candidates, upto: int
    ) -> list[tuple[str, Candidates]]:
        """``ranked`` then the output of each of the first ``upto`` re-rankers.

        Every re-ranker but the last sees the whole ranked list (rules need room to reorder
        and fill slots); the last one cuts to the slate size.
        """
        steps: list[tuple[str, Candidates]] = [("rank", ranked)]
        room = max(query.k, self.config.rank.keep)
        for i, reranker in enumerate(self.rerankers[:upto]):
            k = query.k if i == len(self.rerankers) - 1 else room
            steps.append((reranker.registered_name, reranker.rerank(query, steps[-1][1], k)))
        return steps

    def recommend(self, query: Query) -> Slate:
        trace = self.run(query)
        assert trace.slate is not None
        return trace.slate

    def query_for(self, user_ids: Sequence[ExternalId], k: int | None = None) -> Query:
        """A query for external user ids, with histories from the fitted data
        (unknown users get an empty history: cold start).

        Ids follow the catalogue's type, as the CLI and the server do: in a catalogue of
        integer ids ``"196"`` is user 196. ``k=None`` is the config's slate size.

        Raises:
            ConfigError: ``k`` < 1.
        """
        if k is not None and k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        ds = self.dataset
        return ds.query(ds.user_ids.lookup(coerce_ids(ds.user_ids, user_ids)), k or self.config.k)

    # -- catalogue updates ----------------------------------------------------------------
    def upsert_items(self, frame: pl.DataFrame) -> npt.NDArray[np.int64]:
        """Add new items and update known ones, then call every channel's ``upsert_items``.

        The dataset is replaced (``Dataset.replace``) by one with a copied, extended item
        ``IdMap`` and an updated item table, so holders of the previous dataset are unaffected.

        Args:
            frame: one row per item: ``item_id`` (external id) and any item-table columns
                (``category``, ``tags``, ``title``, ``created_at``, ...). Nulls leave a value
                unchanged; new columns are added (null for the other items); a repeated
                ``item_id`` keeps its last row.

        Returns:
            ``[n]`` dense ids of the frame's distinct items in order of first appearance (new
            items get new ids at the end, in that order).
        """
        ds = self.dataset
        if "item_id" not in frame.columns or "item_idx" in frame.columns:
            raise DataError(f"item frame needs 'item_id' and no 'item_idx'; got {frame.columns}")
        item_ids = IdMap(ds.item_ids.ids, name=ds.item_ids.name)
        all_idx = item_ids.extend(frame["item_id"].to_list())
        rows = (
            frame.drop("item_id")
            .with_columns(pl.Series("item_idx", all_idx, dtype=pl.Int64))
            .group_by("item_idx", maintain_order=True)
            .last()
        )
        idx = rows["item_idx"].to_numpy()
        updated = ds.replace(item_ids=item_ids, items=_upsert_rows(ds.items, rows))
        for view in _INTERACTION_VIEWS:  # cached views of the unchanged interactions stay valid
            if view in vars(ds):
                vars(updated)[view] = vars(ds)[view]
        self.dataset_ = updated
        for channel in self.channels.values():
            channel.upsert_items(self.dataset_, idx)
        for i, reranker in enumerate(self.rerankers):  # item keys, categories: cheap to refit
            fit_stage(reranker, self.dataset_, self._context(i, None, refit=True))
        return idx

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write the whole funnel to ``directory`` atomically and durably (``io.atomic_dir``:
        ``directory`` becomes a link to a complete version; ``meta.json`` lists every file
        with its checksum). ``extra``: more JSON files to include (name -> content)."""
        ds = self.dataset
        with atomic_dir(directory, versioned=True) as tmp:
            save_config(self.config, tmp / "config.yaml")
            save_dataset(ds, tmp / "data")
            for cid, channel in self.channels.items():
                channel.save(tmp / "recall" / cid)
            self.preranker.save(tmp / "prerank")
            self.ranker.save(tmp / "rank")
            for i, reranker in enumerate(self.rerankers):
                reranker.save(tmp / "rerank" / f"{i:02d}_{reranker.registered_name}")
            for name, payload in (extra or {}).items():
                write_json(tmp / name, payload)
            info = {"funnelrec_version": __version__, "dataset": ds.name}
            write_manifest(tmp, {**info, "n_users": ds.n_users, "n_items": ds.n_items})

    @classmethod
    def load(cls, directory: str | Path) -> Funnel:
        """Load a saved funnel; the link is resolved once, so a concurrent save never mixes
        two versions.

        Raises:
            NotFittedError: ``directory`` is not an artifact.
            ArtifactError: a file is missing, corrupt or of an unsupported format (named).
        """
        directory = Path(directory).resolve()
        check_artifact(directory)
        with reading(directory / "config.yaml"):
            funnel = cls(load_config(directory / "config.yaml"))
        with reading(directory / "data"):
            funnel.dataset_ = load_dataset_dir(directory / "data")
        channels = {}
        for cid in funnel.channels:
            with reading(directory / "recall" / cid):
                channels[cid] = RECALL.load(directory / "recall" / cid)
        funnel.channels = channels
        with reading(directory / "prerank"):
            funnel.preranker = PRERANK.load(directory / "prerank")
        with reading(directory / "rank"):
            funnel.ranker = RANK.load(directory / "rank")
        steps = sorted((directory / "rerank").iterdir()) if (directory / "rerank").exists() else []
        funnel.rerankers = []
        for step in steps:
            with reading(step):
                funnel.rerankers.append(RERANK.load(step))
        return funnel


_INTERACTION_VIEWS = ("arrays", "time_order", "sequences", "max_timestamp")


def _upsert_rows(table: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """``table`` (one row per ``item_idx``) with ``rows`` merged in: known ids updated
    (non-null values only), new ids appended, unknown columns added."""
    try:
        rows = rows.with_columns(
            pl.col(c).cast(table.schema[c]) for c in rows.columns if c in table.columns
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"item attributes do not match the item table's types: {exc}") from None
    added = [c for c in rows.columns if c not in table.columns]
    table = table.with_columns(pl.lit(None, dtype=rows.schema[c]).alias(c) for c in added)
    known = rows.filter(pl.col("item_idx") < table.height)
    if known.height:
        table = table.update(known, on="item_idx")
    fresh = rows.filter(pl.col("item_idx") >= table.height)
    return pl.concat([table, fresh], how="diagonal_relaxed").sort("item_idx")


def _fitting(stage: Any, dataset: Dataset) -> Any:
    """``() -> stage`` fitted on ``dataset`` (a memo's builder)."""

    def fitted() -> Any:
        fit_stage(stage, dataset, FitContext())
        return stage

    return fitted
