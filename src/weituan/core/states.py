"""Declared state graphs. A transition is a conditional UPDATE, so a handler that runs twice moves a row once.

Each lifecycle (deal, team, order, payment hold, fan-out, push delivery) declares its graph once; the
handlers of that lifecycle call `advance()` and act only when it returns True, which makes them
idempotent and safe to retry after a crash.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils import timezone

from weituan.core.errors import Conflict


class InvalidTransition(Conflict):
    code = "invalid_transition"


@dataclass(frozen=True)
class StateGraph:
    name: str
    edges: dict[str, frozenset[str]]
    initial: str
    terminal: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def declare(cls, name: str, initial: str, edges: dict[str, Iterable[str]]) -> "StateGraph":
        frozen = {src: frozenset(dsts) for src, dsts in edges.items()}
        states = set(frozen) | {dst for dsts in frozen.values() for dst in dsts}
        for state in states:
            frozen.setdefault(state, frozenset())
        terminal = frozenset(state for state, dsts in frozen.items() if not dsts)
        if initial not in frozen:
            raise ValueError(f"{name}: initial state {initial!r} is not in the graph")
        return cls(name=name, edges=frozen, initial=initial, terminal=terminal)

    @property
    def states(self) -> list[str]:
        return sorted(self.edges)

    def choices(self) -> list[tuple[str, str]]:
        return [(state, state.replace("_", " ")) for state in self.states]

    def can(self, src: str, dst: str) -> bool:
        return dst in self.edges.get(src, frozenset())

    def sources_of(self, dst: str) -> list[str]:
        return sorted(src for src, dsts in self.edges.items() if dst in dsts)

    def check(self, src: str, dst: str) -> None:
        if not self.can(src, dst):
            raise InvalidTransition(f"{self.name} cannot go from {src} to {dst}")


def advance(
    graph: StateGraph,
    queryset: "models.QuerySet[Any]",
    to_state: str,
    *,
    field_name: str = "state",
    stamp_field: str | None = "state_changed_at",
    **also: Any,
) -> int:
    """Move every row of `queryset` that may legally reach `to_state`; returns how many moved.

    The WHERE clause carries the allowed source states, so concurrent or repeated calls never move
    a row twice and never move it along an undeclared edge.
    """
    sources = graph.sources_of(to_state)
    if not sources:
        raise InvalidTransition(f"{graph.name}: nothing leads to {to_state}")
    values: dict[str, Any] = {field_name: to_state, **also}
    if stamp_field:
        values[stamp_field] = timezone.now()
    return queryset.filter(**{f"{field_name}__in": sources}).update(**values)
