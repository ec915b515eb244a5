"""Request and response models of the HTTP API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

Id = Annotated[StrictStr, Field(min_length=1, max_length=256)] | StrictInt
Timestamp = Annotated[float, Field(ge=0, allow_inf_nan=False)]
ATTRIBUTE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
AttributeValue = StrictStr | StrictInt | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(BaseModel):
    """Every error: a short ``error`` kind, a ``message`` naming the bad value, details."""

    error: str
    message: str
    detail: Any = None


class RecommendedItem(BaseModel):
    item_id: StrictStr | StrictInt
    score: float
    channels: list[str] = Field(description="recall channels that found the item")


class RecommendResponse(BaseModel):
    user_id: str
    known_user: bool = Field(description="false: cold start (the model never saw this user)")
    k: int
    items: list[RecommendedItem]
    generation: int = Field(description="model generation (increments on every reload)")
    trace: dict[str, Any] | None = Field(
        default=None, description="with explain=true: channels, merge, stage scores, re-rank moves"
    )
    timings_ms: dict[str, float] | None = Field(
        default=None, description="with explain=true: time per stage of the request's batch"
    )
    request_id: str | None = Field(
        default=None, description="id of this response (pass it with the events it causes)"
    )
    arm: str | None = Field(
        default=None, description="rollout arm: control, candidate or interleave"
    )


class EventIn(Strict):
    """One event; ``timestamp`` (seconds since the epoch) defaults to the time of receipt."""

    user_id: Id
    item_id: Id
    type: str = Field(default="click", pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
    timestamp: Timestamp | None = None
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="the /recommend response this event answers"
    )


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1)


class EventsAccepted(BaseModel):
    accepted: int
    users: int


class ItemIn(Strict):
    """A new or changed item; omitted/null fields stay unchanged. A new item without
    ``created_at`` is created now."""

    item_id: Id
    category: Annotated[str, Field(max_length=256)] | None = None
    tags: list[Annotated[str, Field(max_length=256)]] | None = Field(default=None, max_length=256)
    title: Annotated[str, Field(max_length=4096)] | None = None
    created_at: Timestamp | None = None
    attributes: dict[Annotated[str, Field(pattern=ATTRIBUTE_NAME)], AttributeValue] = Field(
        default_factory=dict, max_length=64
    )


class ItemBatch(Strict):
    items: list[ItemIn] = Field(min_length=1)


class ItemsUpserted(BaseModel):
    created: list[StrictStr | StrictInt]
    updated: list[StrictStr | StrictInt]
    n_items: int


class SimilarItem(BaseModel):
    item_id: StrictStr | StrictInt
    score: float


class SimilarResponse(BaseModel):
    item_id: StrictStr | StrictInt
    source: str = Field(description="the item-to-item channel used, or 'cooccurrence'")
    items: list[SimilarItem]


class Health(BaseModel):
    status: str
    generation: int
    artifacts: str
    loaded_at: float
    n_users: int
    n_items: int
    store: str


class ReloadRequest(Strict):
    artifacts: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="artifact directory; default: the configured one"
    )


class ReloadResponse(BaseModel):
    generation: int
    artifacts: str
    load_s: float
    n_items: int
