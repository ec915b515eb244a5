"""Safe rollout: a candidate artifact served beside the current one.

* **Hash split** (``--candidate DIR --share 0.1``): a user's arm is a stable hash of their id
  and a salt (BLAKE2b; no state, no coordination): the same user gets the same arm in every
  request and every worker process.
* **Team-draft interleaving** (``--interleave``): users in the candidate share get one slate
  drafted from both rankings (Radlinski et al., 2008); each item remembers the team that put
  it there, and a click credits that team. It needs far less traffic than an A/B split to
  tell two rankers apart.
* **Per-arm outcomes**: impressions, requests, clicks and converted requests per arm (clicks
  are events that name the request); CTR = clicks / impressions and conversion = requests
  with at least one linked event / requests, each with a Wilson 95% interval.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from funnelrec.serve.store.base import Feedback, Impression

CONTROL, CANDIDATE = "control", "candidate"
Z95 = 1.959964
Interval = tuple[float, float, float]


def arm_of(user_id: str, share: float, salt: str = "funnelrec") -> str:
    """``candidate`` for a stable ``share`` of users, else ``control``."""
    if share <= 0:
        return CONTROL
    digest = hashlib.blake2b(f"{salt}:{user_id}".encode(), digest_size=8).digest()
    return CANDIDATE if int.from_bytes(digest, "big") / 2**64 < share else CONTROL


def team_draft(a: Sequence[str], b: Sequence[str], k: int, seed: int) -> list[tuple[str, str]]:
    """Interleave two rankings of item ids into ``k`` items ``(item, team)``.

    Each round the team with fewer picks (a coin flip seeded by ``seed`` on ties) adds its
    best item not yet taken.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str]] = []
    taken: set[str] = set()
    picks = {CONTROL: 0, CANDIDATE: 0}
    lists = {CONTROL: list(a), CANDIDATE: list(b)}
    pos = {CONTROL: 0, CANDIDATE: 0}
    while len(out) < k:
        if picks[CONTROL] != picks[CANDIDATE]:
            team = CONTROL if picks[CONTROL] < picks[CANDIDATE] else CANDIDATE
        else:
            team = CONTROL if rng.random() < 0.5 else CANDIDATE
        order = (team, CANDIDATE if team == CONTROL else CONTROL)
        chosen = None
        for t in order:  # the other team fills in when one runs out
            ranking = lists[t]
            while pos[t] < len(ranking) and ranking[pos[t]] in taken:
                pos[t] += 1
            if pos[t] < len(ranking):
                chosen = (ranking[pos[t]], t)
                break
        if chosen is None:
            break
        taken.add(chosen[0])
        picks[chosen[1]] += 1
        out.append(chosen)
    return out


def wilson(successes: float, trials: float, z: float = Z95) -> Interval:
    """``(rate, low, high)``: the Wilson score interval of a binomial rate."""
    if trials <= 0:
        return 0.0, 0.0, 1.0
    p = min(successes / trials, 1.0)
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return p, max(centre - half, 0.0), min(centre + half, 1.0)


@dataclass
class ArmCounts:
    impressions: int = 0
    requests: int = 0
    clicks: int = 0
    converted: int = 0


@dataclass
class Outcomes:
    """Per-arm counts, fed by impressions and request-linked events (bounded memory: the
    latest ``max_requests`` request ids are remembered for linking)."""

    max_requests: int = 200_000
    arms: dict[str, ArmCounts] = field(default_factory=dict)
    _team_clicks: dict[str, dict[str, int]] = field(default_factory=dict)
    _requests: OrderedDict[str, dict[str, str]] = field(default_factory=OrderedDict)
    _converted: set[str] = field(default_factory=set)

    def shown(self, rows: Sequence[Impression]) -> None:
        """Record one response's impressions (``arm``: the arm, or the team when interleaved)."""
        if not rows:
            return
        rid = rows[0].request_id
        teams = {r.item_id: r.arm for r in rows}
        arms = set(teams.values())
        for arm in arms:
            self.arms.setdefault(arm, ArmCounts()).requests += 1
        for r in rows:
            self.arms.setdefault(r.arm, ArmCounts()).impressions += 1
        self._requests[rid] = teams
        while len(self._requests) > self.max_requests:
            old, old_teams = self._requests.popitem(last=False)
            self._team_clicks.pop(old, None)
            self._converted.difference_update(f"{old}|{a}" for a in set(old_teams.values()))

    def clicked(self, links: Iterable[Feedback]) -> None:
        """Credit linked events to the arm (team) that showed the item."""
        for f in links:
            teams = self._requests.get(f.request_id)
            arm = teams.get(f.event.item_id) if teams else None
            if teams is None or arm is None:
                continue
            counts = self.arms.setdefault(arm, ArmCounts())
            counts.clicks += f.event.type == "click"
            key = f"{f.request_id}|{arm}"
            if key not in self._converted:
                self._converted.add(key)
                counts.converted += 1
            if len(set(teams.values())) > 1:  # interleaved
                per = self._team_clicks.setdefault(f.request_id, {})
                per[arm] = per.get(arm, 0) + 1

    def wins(self) -> dict[str, int]:
        """Interleaved requests with clicks won by each team (more clicks), or tied."""
        out = {CONTROL: 0, CANDIDATE: 0, "tie": 0}
        for per in self._team_clicks.values():
            a, b = per.get(CONTROL, 0), per.get(CANDIDATE, 0)
            out[CONTROL if a > b else CANDIDATE if b > a else "tie"] += 1
        return out

    def table(self) -> Iterator[tuple[str, ArmCounts, Interval, Interval]]:
        """``(arm, counts, ctr interval, conversion interval)`` per arm."""
        for arm, c in sorted(self.arms.items()):
            yield arm, c, wilson(c.clicks, c.impressions), wilson(c.converted, c.requests)


def outcomes_of(impressions: Sequence[Impression], feedback: Sequence[Feedback]) -> Outcomes:
    """Per-arm outcomes from a store's logs (``funnelrec report --store``)."""
    out = Outcomes(max_requests=max(len(impressions), 1))
    by_request: dict[str, list[Impression]] = {}
    for row in impressions:
        by_request.setdefault(row.request_id, []).append(row)
    for rows in by_request.values():
        out.shown(rows)
    out.clicked(feedback)
    return out
