"""Price level of a start/destination pair: level rules, one small function per dimension."""

from __future__ import annotations

from collections.abc import Sequence, Set

from fare_engine.model import AreaSpec, LevelRule, Relation


def _relation_matches(
    relation: Relation | None,
    start: AreaSpec,
    dest: AreaSpec,
    neighbours: Set[frozenset[str]],
) -> bool:
    if relation is None:
        return True
    if relation is Relation.SAME_AREA:
        return start.code == dest.code
    if relation is Relation.NEIGHBOURING_AREAS:
        return frozenset((start.code, dest.code)) in neighbours
    if relation is Relation.SAME_KREIS:
        return start.kreis is not None and start.kreis == dest.kreis
    return start.teilraum is not None and start.teilraum == dest.teilraum


def _area_matches(wanted: str | None, area: AreaSpec) -> bool:
    return wanted is None or wanted == area.code


def _kreis_matches(wanted: str | None, area: AreaSpec) -> bool:
    return wanted is None or wanted == area.kreis


def rule_matches(
    rule: LevelRule, start: AreaSpec, dest: AreaSpec, neighbours: Set[frozenset[str]]
) -> bool:
    """True if every dimension the rule names matches the pair (None = any)."""
    return (
        _relation_matches(rule.relation, start, dest, neighbours)
        and _area_matches(rule.from_area, start)
        and _area_matches(rule.to_area, dest)
        and _kreis_matches(rule.from_kreis, start)
        and _kreis_matches(rule.to_kreis, dest)
    )


def first_matching_rule(
    rules: Sequence[LevelRule],
    start: AreaSpec,
    dest: AreaSpec,
    neighbours: Set[frozenset[str]],
) -> LevelRule | None:
    """The first rule in file order that matches, so specific overrides go first."""
    for rule in rules:
        if rule_matches(rule, start, dest, neighbours):
            return rule
    return None
