"""Why a missed ride was missed (simulator.misses): the cause read off its evidence."""

import pytest

from simulator.misses import MISS_CAUSES, cause_of


@pytest.mark.parametrize(
    ("terms", "heard_at_boarding", "cause"),
    [
        # Heard in too few parts: whatever the level says.
        ({"hearing": -3.0, "path_loss": 6.0}, True, "sparse"),
        ({"hearing": 0.0, "phone": 0.0}, True, "sparse"),
        # Heard throughout, and the level turns the sum against.
        ({"hearing": 8.4, "path_loss": -12.0}, True, "level"),
        ({"hearing": 8.4, "path_loss": -12.0, "bus_levels": 2.0}, True, "level"),
        # A phone's own reports count with the hearing, not with the level.
        ({"hearing": 0.0, "phone": 4.0, "path_loss": -5.0}, True, "level"),
        # The level excused by the bus's riders: the boarding is what is left.
        ({"hearing": 8.4, "path_loss": -12.0, "bus_levels": 12.0}, False, "boarding"),
        ({"hearing": 8.4, "path_loss": 2.0}, False, "boarding"),
        ({"hearing": 8.4, "path_loss": 2.0}, True, "other"),
    ],
)
def test_a_miss_is_put_down_to_the_first_part_of_the_model_that_speaks_against_it(
    terms: dict[str, float], heard_at_boarding: bool, cause: str
):
    assert cause_of(terms, heard_at_boarding) == cause
    assert cause in MISS_CAUSES
