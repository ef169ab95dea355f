"""The whole path at small scale: simulated buses -> real agents -> HTTP -> backend -> trips
-> fares, scored against ground truth (the clean scenario of the walking skeleton)."""

import datetime as dt

import pytest
from rich.console import Console

from simulator.demo import DemoOptions, run_demo


@pytest.mark.slow
def test_demo_detects_the_clean_day(tmp_path):
    options = DemoOptions(
        buses=3,
        passengers=30,
        bystanders=15,
        seed=3,
        workdir=tmp_path / "demo",
        service_start=dt.time(6, 0),
        service_end=dt.time(10, 0),
        quiet=True,
    )
    result = run_demo(options, Console(quiet=True))
    scores = result.scores
    assert scores.truth_trips > 10
    assert scores.f1 >= 0.9, scores.as_dict()
    assert scores.board_stop_accuracy is not None
    assert scores.board_stop_accuracy >= 0.9
    assert scores.bystanders_charged == 0
    assert result.bystander_encounters > 0
    assert result.batches > 0
    # Both kinds of riders: the iPhones' rides rest on the uploads of what they heard.
    assert result.phone_batches > 0
    iphones, androids = result.iphone_scores, result.android_scores
    assert iphones is not None
    assert androids is not None
    assert iphones.truth_trips > 0
    assert androids.truth_trips > 0
    assert iphones.truth_trips + androids.truth_trips == scores.truth_trips
    assert iphones.f1 >= 0.8, iphones.as_dict()
    charged = {c["passenger_id"] for c in result.charges}
    assert len(charged) == len({t["passenger_id"] for t in result.trips})
    assert all(c["total_cents"] > 0 for c in result.charges)
    # The day's month is closed and its revenue shared between the companies whose buses
    # carried the rides, to the cent (the demo day lies in a month that has ended).
    revenue = result.revenue
    assert revenue is not None
    assert revenue["balanced"]
    assert revenue["total_cents"] == revenue["ledger_total_cents"] == result.revenue_cents
    companies = {c["company"] for c in revenue["companies"] if c["net_cents"]}
    assert companies
    assert companies <= {"RLG", "VKU", "BRS"}, companies  # every bus has its operator
    assert all(c["passenger_km"] > 0 for c in revenue["companies"] if c["net_cents"])
    # The server process was stopped and its database is left for inspection.
    assert (tmp_path / "demo" / "bibo.sqlite3").exists()
