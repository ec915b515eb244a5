"""What a stage needs from the data, declared on the stage class and checked before fitting.

A stage lists ``Need``s (``Stage.requires(params)``; the default is the class attribute
``needs``). Each need is satisfied by *any one* of its tokens; the data profile
(``funnelrec.profile``) says which tokens a dataset offers. ``funnelrec.preflight`` checks a
whole config at once and reports every unmet need with the stage that has it.

Tokens:
    ``item:<column>``  item-table column with at least one non-null value;
    ``user:<column>``  user-table column;
    ``feedback:<name>`` feedback column of the interactions (``rating``, ``like``, ...);
    ``feedback``       any feedback column;
    ``real_timestamps`` timestamps that are times, not only positions in a sequence;
    ``impressions``    an exposure log with negatives;
    ``kg``             a knowledge graph linked to items;
    ``interactions``   at least one interaction.
"""

from __future__ import annotations

from dataclasses import dataclass

REAL_TIME = "real_timestamps"
IMPRESSIONS = "impressions"
FEEDBACK = "feedback"
KG = "kg"
INTERACTIONS = "interactions"


@dataclass(frozen=True)
class Need:
    """One requirement: any token of ``any_of`` satisfies it.

    Attributes:
        any_of: tokens (see the module docstring), e.g. ``("impressions", "feedback:rating")``.
        why: what the stage uses it for (one short phrase).
        fix: suggestion when the data lacks it.
    """

    any_of: tuple[str, ...]
    why: str
    fix: str


def item_column(name: str) -> str:
    """Need token of an item-table column: ``item:<name>``."""
    return f"item:{name}"


def user_column(name: str) -> str:
    """Need token of a user-table column: ``user:<name>``."""
    return f"user:{name}"


def feedback(name: str) -> str:
    """Need token of a feedback column of the interactions: ``feedback:<name>``."""
    return f"feedback:{name}"


def describe(token: str) -> str:
    """Readable name of a token: ``item:title`` -> ``item column 'title'``."""
    kind, _, name = token.partition(":")
    if not name:
        return {REAL_TIME: "real timestamps (not positions)", KG: "a knowledge graph"}.get(
            token, token.replace("_", " ")
        )
    return {"item": "item column", "user": "user column", "feedback": "feedback column"}.get(
        kind, kind
    ) + f" {name!r}"


def real_time(why: str) -> Need:
    """Need of real timestamps (sequence files only give positions)."""
    return Need(
        (REAL_TIME,),
        why,
        "the data has only event order (positions); drop this or load a log with timestamps",
    )


def item_columns(columns: tuple[str, ...], why: str, param: str) -> Need:
    """Need of one of the item-table ``columns`` (configured by the stage's ``param``)."""
    return Need(
        tuple(item_column(c) for c in columns),
        why,
        f"set {param} to an existing item column, add the column to the item table, "
        "or drop this stage",
    )
