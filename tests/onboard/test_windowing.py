"""Pure windowing of adverts into sighting rows."""

from __future__ import annotations

import pytest

from onboard.windowing import AddResult, SightingRow, Windower
from tests.onboard.conftest import T0, token

A, B = token(1), token(2)


def test_keeps_max_rssi_count_and_last_non_null_tx_per_window_and_token():
    lo, hi = sorted((A, B))
    w = Windower(1000)
    w.add(T0 + 10, hi, -70, -8)
    w.add(T0 + 500, hi, -55, None)
    w.add(T0 + 999, hi, -90, -9)
    w.add(T0 + 999, lo, -80, None)

    rows = w.flush(T0 + 1000)

    assert rows == [
        SightingRow(t=T0, token=lo, rssi=-80, n=1, tx=None),
        SightingRow(t=T0, token=hi, rssi=-55, n=3, tx=-9),
    ]


def test_tx_stays_at_last_known_value_when_later_adverts_lack_it():
    w = Windower(1000)
    w.add(T0, A, -70, -8)
    w.add(T0 + 1, A, -70, None)

    assert w.flush_all()[0].tx == -8


def test_open_window_is_not_flushed_until_it_closes():
    w = Windower(1000)
    w.add(T0 + 1500, A, -60, None)

    assert w.flush(T0 + 1999) == []
    assert w.open_windows == 1
    assert [r.t for r in w.flush(T0 + 2000)] == [T0 + 1000]
    assert w.open_windows == 0


def test_rows_are_sorted_by_window_then_token():
    w = Windower(1000)
    for t in (T0 + 2500, T0 + 10, T0 + 1200):
        w.add(t, B, -60, None)
        w.add(t, A, -60, None)

    rows = w.flush(T0 + 10_000)

    assert [(r.t, r.token) for r in rows] == sorted((r.t, r.token) for r in rows)
    assert len(rows) == 6


def test_memory_is_bounded_to_open_windows():
    w = Windower(1000)
    for second in range(3600):
        w.add(T0 + second * 1000 + 300, A, -60, None)
        w.flush(T0 + second * 1000 + 300)
        assert w.open_windows <= 1


def test_advert_for_an_already_flushed_window_is_refused():
    w = Windower(1000)
    w.add(T0, A, -60, None)
    w.flush(T0 + 1000)

    assert w.add(T0 + 999, A, -50, None) is False
    assert w.flush(T0 + 5000) == []


def test_flush_all_takes_open_windows_and_later_adverts_there_are_refused():
    w = Windower(1000)
    w.add(T0 + 100, A, -60, None)

    assert len(w.flush_all()) == 1
    assert w.add(T0 + 200, A, -60, None) is False
    assert w.add(T0 + 1000, A, -60, None) is True


@pytest.mark.parametrize("window_ms", [0, -1000])
def test_window_must_be_positive(window_ms):
    with pytest.raises(ValueError, match="window_ms"):
        Windower(window_ms)


def test_max_open_rows_must_be_positive():
    with pytest.raises(ValueError, match="max_open_rows"):
        Windower(1000, max_open_rows=0)


def test_a_crowded_bus_holds_one_or_two_windows_of_rows():
    """200 phones advertising at 10 Hz for a minute, flushed once a second."""
    phones = [token(p) for p in range(200)]
    w = Windower(1000)
    peak = 0
    for tenth in range(600):
        t = T0 + tenth * 100
        for phone in phones:
            w.add(t + phone[0] % 100, phone, -60 - phone[1] % 30, -8)
        if tenth % 10 == 9:
            rows = w.flush(t + 100)
            assert len(rows) == 200
            assert all(r.n == 10 for r in rows)
        peak = max(peak, w.open_rows)
    assert peak <= 2 * len(phones)


def test_at_the_row_cap_new_rows_are_refused_and_existing_rows_still_count():
    w = Windower(1000, max_open_rows=2)

    assert w.add_checked(T0, A, -60, None) is AddResult.ADDED
    assert w.add_checked(T0 + 1000, B, -60, None) is AddResult.ADDED
    assert w.add_checked(T0, B, -60, None) is AddResult.FULL
    assert w.add_checked(T0 + 2000, A, -60, None) is AddResult.FULL
    assert w.add_checked(T0, A, -50, None) is AddResult.ADDED

    assert w.flush(T0 + 1000) == [SightingRow(t=T0, token=A, rssi=-50, n=2, tx=None)]
    assert w.open_rows == 1
    assert w.add_checked(T0 + 1500, A, -60, None) is AddResult.ADDED


def test_late_and_full_are_told_apart():
    w = Windower(1000, max_open_rows=1)
    w.add(T0, A, -60, None)
    w.flush(T0 + 1000)

    assert w.add_checked(T0 + 10, A, -60, None) is AddResult.LATE
