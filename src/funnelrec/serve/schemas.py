"""Request and response models of the HTTP API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
)
from pydantic.config import JsonDict

# JSON integers that every client reads exactly (RFC 7493: |n| <= 2**53 - 1, doubles hold them);
# a larger integer id is sent as a string (``"9007199254740993"`` is that item in a catalogue
# of integer ids)
SAFE_INT = 2**53 - 1
MAX_TIME = 1e11  # seconds since the epoch (year 5138): anything past is a typo


def _integral(value: Any) -> Any:
    """``3.0`` is the integer 3, as JSON Schema's ``integer`` says; booleans stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int64 = Annotated[StrictInt, Field(ge=-SAFE_INT, le=SAFE_INT), BeforeValidator(_integral)]
Id = Annotated[
    Annotated[Annotated[StrictStr, Field(min_length=1, max_length=256)], Tag("str")]
    | Annotated[Int64, Tag("int")],
    Discriminator(lambda v: "str" if isinstance(v, str) else "int"),  # errors name one branch
]
# strict: JSON numbers only (``false`` is not 1970); integers are accepted as floats
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIME, allow_inf_nan=False, strict=True)]
ATTRIBUTE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
RESERVED_ATTRIBUTES = ("item_id", "item_idx", "category", "tags", "title", "created_at")
AttributeValue = (
    Annotated[StrictStr, Field(max_length=4096)]
    | Int64
    | Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | StrictBool
    | None
)
# what the API checks of attribute names, stated in the schema (pydantic omits key rules)
ATTRIBUTES_SCHEMA: JsonDict = {
    "additionalProperties": False,
    "propertyNames": {"pattern": ATTRIBUTE_NAME, "not": {"enum": list(RESERVED_ATTRIBUTES)}},
}


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
    k: int = Field(description="slate size asked for (or the config's)")
    items: list[RecommendedItem]
    capped_by: str | None = Field(
        default=None,
        description="when fewer than k items came back: the stage whose cut limited the slate "
        "(e.g. 'rank.keep=50') or 'catalogue' when no more items are left",
    )
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
        default_factory=dict,
        max_length=64,
        description="more item columns: names match ATTRIBUTE_NAME and are not a reserved "
        "field; a value must fit the item table's column type (else 422 naming it)",
        json_schema_extra=ATTRIBUTES_SCHEMA,
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
    source: str = Field(
        description="what answered: the item-to-item channel's id, 'cooccurrence' (the "
        "funnel's interactions) or 'content' (tags and category, e.g. for a new item)"
    )
    items: list[SimilarItem]


class Health(BaseModel):
    status: str
    generation: int
    artifacts: str = Field(description="name of the artifact directory (never its path)")
    loaded_at: float
    pid: int = Field(description="operating-system id of the process that answered")
    n_users: int
    n_items: int
    store: str
    threads: int = Field(description="torch, BLAS and Faiss threads of the process that answered")


class ReloadRequest(Strict):
    artifacts: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="artifact directory; default: the configured one"
    )


class ReloadResponse(BaseModel):
    generation: int
    artifacts: str
    load_s: float
    n_items: int
