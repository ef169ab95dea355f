"""Token resolution across interval boundaries and with phone clock skew (docs/contracts.md,
Token resolution)."""

import numpy as np

from backend.trips.resolution import UNRESOLVED, BeaconResolver, TokenResolver
from onboard import wire

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
BOUNDARY_MS = 2_992_369 * 600_000  # start of interval 2992369


def resolver() -> TokenResolver:
    return TokenResolver([("dev_a", KEY_A), ("dev_b", KEY_B)])


def token_at(key: bytes, phone_ms: int) -> bytes:
    return wire.token_for_interval(key, wire.interval_of(phone_ms))


def resolve_one(t_ms: int, token: bytes) -> int:
    return int(resolver().resolve(np.array([t_ms], dtype=np.int64), [token])[0])


def test_both_tokens_around_a_boundary_resolve_to_the_device():
    before = token_at(KEY_A, BOUNDARY_MS - 1)
    after = token_at(KEY_A, BOUNDARY_MS)
    assert before != after
    # The scanner hears both within the same second around the boundary.
    assert resolve_one(BOUNDARY_MS - 500, before) == 0
    assert resolve_one(BOUNDARY_MS - 500, after) == 0
    assert resolve_one(BOUNDARY_MS + 500, before) == 0
    assert resolve_one(BOUNDARY_MS + 500, after) == 0


def test_phone_clock_60_s_ahead_or_behind_still_resolves():
    for skew_ms in (-60_000, -1_000, 1_000, 60_000):
        for scanner_ms in (BOUNDARY_MS - 30_000, BOUNDARY_MS + 30_000, BOUNDARY_MS + 300_000):
            token = token_at(KEY_B, scanner_ms + skew_ms)
            assert resolve_one(scanner_ms, token) == 1, (skew_ms, scanner_ms)


def test_a_token_far_out_of_its_time_does_not_resolve():
    # A token replayed 30 minutes later is not accepted.
    token = token_at(KEY_A, BOUNDARY_MS)
    assert resolve_one(BOUNDARY_MS + 1_800_000, token) == UNRESOLVED


def test_unknown_tokens_stay_unresolved():
    stranger = token_at(bytes(32), BOUNDARY_MS)
    assert resolve_one(BOUNDARY_MS, stranger) == UNRESOLVED


def test_resolve_is_vectorised_over_rows():
    times = np.array([BOUNDARY_MS, BOUNDARY_MS, BOUNDARY_MS], dtype=np.int64)
    tokens = [token_at(KEY_B, BOUNDARY_MS), b"\0" * 16, token_at(KEY_A, BOUNDARY_MS)]
    assert resolver().resolve(times, tokens).tolist() == [1, UNRESOLVED, 0]


def test_only_a_few_intervals_are_kept():
    r = TokenResolver([("dev_a", KEY_A)], cache_intervals=3)
    for interval in range(10):
        r.tokens_of(interval)
    assert list(r._cache) == [7, 8, 9]
    assert r.tokens_of(9)[wire.token_for_interval(KEY_A, 9)] == 0


def test_a_day_longer_than_the_cache_still_resolves():
    r = TokenResolver([("dev_a", KEY_A)], cache_intervals=4)
    times = np.arange(BOUNDARY_MS, BOUNDARY_MS + 20 * 600_000, 60_000, dtype=np.int64)
    tokens = [token_at(KEY_A, int(t)) for t in times]
    assert r.resolve(times, tokens).tolist() == [0] * len(times)


def test_rows_in_any_order_resolve_as_in_time_order():
    """Rows come sorted by time from the repository, but any order gives the same answer
    (a stranger's token, a token out of its time and rows across boundaries mixed)."""
    rng = np.random.default_rng(7)
    times = np.sort(rng.integers(BOUNDARY_MS - 900_000, BOUNDARY_MS + 900_000, 300))
    keys = [KEY_A, KEY_B, bytes(32)]
    skews = [0, 60_000, -60_000, 1_800_000]
    tokens = [token_at(keys[rng.integers(3)], int(t) + skews[rng.integers(4)]) for t in times]
    in_order = TokenResolver([("dev_a", KEY_A), ("dev_b", KEY_B)]).resolve(times, tokens)
    assert {0, 1, UNRESOLVED} <= set(in_order.tolist())
    shuffled = rng.permutation(len(times))
    mixed = TokenResolver([("dev_a", KEY_A), ("dev_b", KEY_B)]).resolve(
        times[shuffled], [tokens[i] for i in shuffled]
    )
    assert mixed.tolist() == in_order[shuffled].tolist()


# --- beacon resolution (docs/contracts.md, Bus beacon) --------------------------------------

INTERVAL = 2_992_369
AT = INTERVAL * 600_000 + 300_000  # the middle of the interval


def secret(n: int) -> bytes:
    return n.to_bytes(32, "big")


SAME = (secret(58365), secret(89130))
"""Two vehicle secrets whose beacon ids are the same in ``INTERVAL`` (found by search)."""
ADJACENT = (secret(36432), secret(16793))
"""The first's id in ``INTERVAL`` is the second's in ``INTERVAL + 1`` (found by search)."""


def beacon(vehicle_secret: bytes, interval: int) -> tuple[int, int]:
    return wire.beacon_for_interval(wire.beacon_key(vehicle_secret), interval)


def resolve_beacons(resolver: BeaconResolver, t_ms: int, *ids: tuple[int, int]) -> list:
    return resolver.resolve([t_ms] * len(ids), [i[0] for i in ids], [i[1] for i in ids])


def test_a_beacon_resolves_in_its_interval_and_its_neighbours_only():
    r = BeaconResolver([("A", secret(1)), ("B", secret(2))])
    ids = [beacon(secret(2), INTERVAL + d) for d in (-2, -1, 0, 1, 2)]
    assert resolve_beacons(r, AT, *ids) == [None, "B", "B", "B", None]
    assert resolve_beacons(r, AT, beacon(secret(1), INTERVAL), (0, 0)) == ["A", None]


def test_an_id_two_vehicles_share_in_one_interval_resolves_to_neither():
    assert beacon(SAME[0], INTERVAL) == beacon(SAME[1], INTERVAL)
    r = BeaconResolver([("A", SAME[0]), ("B", SAME[1]), ("C", secret(3))])
    shared = beacon(SAME[0], INTERVAL)
    assert resolve_beacons(r, AT, shared, beacon(secret(3), INTERVAL)) == [None, "C"]
    # Their own ids of the next interval are theirs alone again.
    later = AT + 600_000
    assert resolve_beacons(r, later, beacon(SAME[0], INTERVAL + 1)) == ["A"]


def test_an_id_two_vehicles_use_in_neighbouring_intervals_resolves_to_neither():
    first, second = ADJACENT
    shared = beacon(first, INTERVAL)
    assert shared == beacon(second, INTERVAL + 1)
    r = BeaconResolver([("A", first), ("B", second)])
    # Heard in INTERVAL or INTERVAL + 1, either vehicle may have sent it: neither is named.
    assert resolve_beacons(r, AT, shared) == [None]
    assert resolve_beacons(r, AT + 600_000, shared) == [None]
    # Two intervals later only B's id is in reach.
    assert resolve_beacons(r, AT + 1_200_000, shared) == ["B"]


def test_beacon_ids_are_computed_per_interval_and_only_a_few_kept():
    r = BeaconResolver([("A", secret(1))], cache_intervals=3)
    for interval in range(10):
        r.ids_of(interval)
    assert list(r._cache) == [7, 8, 9]
    major, minor = beacon(secret(1), 9)
    assert r.ids_of(9) == {major << 16 | minor: 0}


def test_no_vehicles_resolve_nothing():
    assert resolve_beacons(BeaconResolver([]), AT, (1, 2)) == [None]
