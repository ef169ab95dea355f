"""Pure timing arithmetic: send spacing, the HTTP Date parser, the clock-offset estimate."""

from __future__ import annotations

import email.utils

import pytest

from onboard.timing import ClockOffsetEstimator, SendSpacing, parse_http_date
from tests.onboard.conftest import T0


def test_spacing_allows_one_send_per_gap():
    spacing = SendSpacing(2.0)

    assert spacing.ready(T0)
    spacing.sent(T0)
    assert spacing.ready_at() == T0 + 500
    assert not spacing.ready(T0 + 499)
    assert spacing.ready(T0 + 500)


def test_spacing_forgives_a_clock_stepped_backwards():
    spacing = SendSpacing(0.1)
    spacing.sent(T0)

    assert spacing.ready(T0 - 60_000)


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_spacing_refuses_a_rate_that_is_not_positive(rate):
    with pytest.raises(ValueError, match="max_per_s"):
        SendSpacing(rate)


def test_http_date_is_parsed_to_epoch_ms():
    header = email.utils.formatdate(T0 / 1000, usegmt=True)

    assert parse_http_date(header) == T0
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777000


@pytest.mark.parametrize("value", ["", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT"])
def test_unparsable_dates_are_none(value):
    assert parse_http_date(value) is None


def test_offset_is_bounded_by_each_answer_and_narrows():
    est = ClockOffsetEstimator()
    assert est.offset_ms is None

    # The server is 120.3 s ahead; its Date is truncated to whole seconds.
    true_offset = 120_300
    for local in range(T0, T0 + 20_000, 1_370):
        server = local + 40 + true_offset  # written 40 ms after the request left
        date = server - server % 1000
        est.observe(date, sent_ms=local, received_ms=local + 80)

    assert est.offset_ms is not None
    assert abs(est.offset_ms - true_offset) <= 80
    assert est.uncertainty_ms is not None
    assert est.uncertainty_ms <= 100


def test_a_clock_step_restarts_the_estimate():
    est = ClockOffsetEstimator()
    est.observe(T0, sent_ms=T0, received_ms=T0 + 10)
    est.observe(T0 + 3_600_000, sent_ms=T0 + 10_000, received_ms=T0 + 10_010)

    assert est.offset_ms is not None
    assert abs(est.offset_ms - 3_590_000) < 1000
