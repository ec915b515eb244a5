"""``Stage``: what every funnel stage shares — typed params, fitted-state checks, save/load.

Subclasses declare ``params_model`` (a pydantic model; unknown keys are rejected) and keep
fitted state in attributes ending with ``_``. The default ``save``/``load`` persist numpy
arrays (``.npz``, no pickle), scipy sparse matrices and JSON-able values; stages holding
other state (e.g. torch modules) override ``_save_state``/``_load_state``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from funnelrec.errors import ConfigError, NotFittedError
from funnelrec.io import atomic_dir, read_json, write_json
from funnelrec.needs import Need

if TYPE_CHECKING:  # pragma: no cover
    from funnelrec.context import FitContext
    from funnelrec.data.dataset import Dataset


class Params(BaseModel):
    """Base of stage parameter models: strict, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


class Stage(ABC, Generic[P]):
    """Base class of recall channels, scorers and re-rankers.

    The one fit contract: ``fit(dataset, ctx=None) -> self``. ``ctx`` (a
    ``funnelrec.context.FitContext``) carries what the funnel offers a stage (fitted
    channels, out-of-fold training lists, the validation part, the tasks); ``None`` when the
    stage is fitted on its own.

    Args:
        params: a validated ``params_model`` instance, or ``None`` to build one from
            ``kwargs`` (unknown keys raise ``ConfigError``).
        **kwargs: raw params, when ``params`` is not given.

    Attributes:
        kind: the registry the stage belongs to (``recall``, ``prerank``, ``rank``, ``rerank``).
        registered_name: the name it is registered under (set by ``Registry.register``).
        params_model: the pydantic model of its params.
        needs: what it needs from the data (columns, feedback), checked before ``fit``.
        reads_channel_evidence: whether ``score``/``rerank`` reads the per-channel evidence
            the funnel attaches to the merged recall set (``stage_scores`` keys ``ch:*``,
            ``cs:*``, ``sim_max:*``, ``sim_mean:*``, see ``funnelrec.stacking.annotate``).
            ``True`` (the safe default) unless a stage declares otherwise; when no stage of
            a funnel reads it, serving skips computing it (``Funnel.run(evidence=False)``).
        params: the validated params of this instance.
    """

    kind: ClassVar[str] = "stage"
    registered_name: ClassVar[str] = ""
    params_model: ClassVar[type[Params]] = Params
    #: What the stage needs from the data (checked before fitting, see ``funnelrec.needs``).
    needs: ClassVar[tuple[Need, ...]] = ()
    #: Whether the stage reads the merged set's per-channel evidence (see the class doc).
    reads_channel_evidence: ClassVar[bool] = True

    def __init__(self, params: P | None = None, **kwargs: Any) -> None:
        if params is not None and kwargs:
            raise ConfigError("pass either a params object or keyword params, not both")
        self.params: P = params if params is not None else self.validate_params(kwargs)

    @classmethod
    def validate_params(cls, raw: dict[str, Any]) -> P:
        """Validate a raw params mapping; errors name the stage and the bad key."""
        try:
            return cls.params_model.model_validate(raw)  # type: ignore[return-value]
        except ValidationError as exc:
            raise ConfigError(
                f"{cls.kind} {cls.registered_name or cls.__name__}: "
                f"{describe_validation_error(exc)}"
            ) from None

    @classmethod
    def requires(cls, params: Any) -> tuple[Need, ...]:
        """Needs of this stage with these (validated) params; default: the class's ``needs``."""
        return cls.needs

    @abstractmethod
    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Fit on ``dataset`` (the training part), using ``ctx`` when fitted in a funnel.

        Args:
            dataset: the interactions (and item/user tables) to learn from.
            ctx: the funnel's state (``funnelrec.context.FitContext``), or ``None``.

        Returns:
            ``self``, fitted: its state is in the attributes ending with ``_``.
        """

    # -- fitted state ---------------------------------------------------------------------
    def fitted_state(self) -> dict[str, Any]:
        """The fitted attributes (public names ending with ``_``) by name; empty before
        ``fit``/``load``."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    @property
    def is_fitted(self) -> bool:
        """True once ``fit`` or ``load`` has set fitted state."""
        return bool(self.fitted_state())

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` (naming the class) unless the stage is fitted."""
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(dataset) or load(dir) first"
            )

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write params and fitted state to ``directory`` atomically."""
        self.check_fitted()
        with atomic_dir(directory) as tmp:
            write_json(
                tmp / "stage.json",
                {
                    "kind": self.kind,
                    "name": self.registered_name,
                    "params": self.params.model_dump(mode="json"),
                },
            )
            self._save_state(tmp)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """A fitted stage from a directory written by ``save`` (params validated again)."""
        directory = Path(directory)
        meta = read_json(directory / "stage.json")
        stage = cls(cls.validate_params(meta["params"]))
        stage._load_state(directory)
        return stage

    def _save_state(self, directory: Path) -> None:
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        plain: dict[str, Any] = {}
        for key, value in self.fitted_state().items():
            if isinstance(value, np.ndarray):
                arrays[key] = value
            elif sp.issparse(value):
                sp.save_npz(directory / f"sparse_{key}.npz", sp.csr_matrix(value))
            else:
                try:
                    json.dumps(value)
                except TypeError:
                    raise TypeError(
                        f"{type(self).__name__}.{key} ({type(value).__name__}) is not "
                        "serialisable by default; override _save_state/_load_state"
                    ) from None
                plain[key] = value
        np.savez(directory / "arrays.npz", allow_pickle=False, **arrays)
        write_json(directory / "state.json", plain)

    def _load_state(self, directory: Path) -> None:
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            for key in npz.files:
                setattr(self, key, npz[key])
        for path in directory.glob("sparse_*.npz"):
            setattr(self, path.stem.removeprefix("sparse_"), sp.load_npz(path).tocsr())
        for key, value in read_json(directory / "state.json").items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


def describe_validation_error(exc: ValidationError) -> str:
    """One line per pydantic error: ``unknown key 'x'`` / ``'x': message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        else:
            parts.append(f"{loc!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)
