"""Bills people read: German by default, English selectable; products named as the tariff
names them; "alone" prices that add up; assumed prices flagged; local times with offset;
no internal tariff notes in what a passenger receives."""

from __future__ import annotations

import datetime as dt
import json
import re

import fare_engine
from backend.billing import presentation
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from fare_engine.money import format_cents

SOEST = [f"de:05974:10{k:02d}" for k in range(1, 11)]
UNNA = "de:05978:2001"
NOV = "2026-11"
DECEMBER = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def trip(board: int, start: str, end: str, stops: int | None = None) -> fare_engine.Trip:
    return fare_engine.Trip(
        board_stop_id=start,
        alight_stop_id=end,
        board_time=board,
        alight_time=board + 10 * 60_000,
        rider_category="adult",
        stops_travelled=stops,
    )


def shown(trips: list[fare_engine.Trip]) -> dict:
    return presentation.passenger_bill(json.loads(fare_engine.best_price_multi(trips).to_json()))


def test_each_trip_names_its_own_ticket_and_the_alone_prices_add_up():
    bill = shown(
        [
            trip(ms(2026, 11, 3, 6), SOEST[0], SOEST[3], stops=3),  # a Kurzstrecke
            trip(ms(2026, 11, 3, 9), SOEST[3], SOEST[8], stops=5),
            trip(ms(2026, 11, 3, 15), SOEST[8], UNNA),  # level 5: an assumed price
        ]
    )
    labels = [t["alone_label"] for t in bill["trips"]]
    assert labels[0] == "Kurzstrecke"
    assert all("level" not in label for label in labels)
    text = presentation.explain(bill, "de")
    alone = [int(a) * 100 + int(c) for a, c in re.findall(r"einzeln: .*? (\d+),(\d\d) €", text)]
    assert len(alone) == 3
    assert sum(alone) == bill["each_alone_cents"] == sum(t["single_cents"] for t in bill["trips"])
    assert f"Jede Fahrt einzeln: {format_cents(bill['each_alone_cents'])}" in text


def test_an_assumed_price_is_flagged_and_internal_notes_never_reach_the_passenger():
    bill = shown([trip(ms(2026, 11, 3, 9), SOEST[0], UNNA)])
    (product,) = bill["products"]
    provenance = fare_engine.best_price_multi([trip(ms(2026, 11, 3, 9), SOEST[0], UNNA)])
    assert provenance.products[0].provenance.startswith("assumed")  # the tariff file's note
    assert product["assumed_price"] is True
    dumped = json.dumps(bill)
    assert "provenance" not in dumped
    assert "assumed:" not in dumped
    assert "* Preis angenommen" in presentation.explain(bill, "de")
    assert "* assumed price" in presentation.explain(bill, "en")


def test_two_rides_at_0230_on_the_october_night_print_different_times():
    summer = ms(2026, 10, 25, 0, 30)  # 02:30 CEST
    winter = ms(2026, 10, 25, 1, 30)  # 02:30 CET, an hour later
    text = presentation.explain(
        shown([trip(summer, SOEST[0], SOEST[2]), trip(winter, SOEST[2], SOEST[0])]), "de"
    )
    assert "25.10.2026 02:30 (+02:00)" in text
    assert "25.10.2026 02:30 (+01:00)" in text
    assert presentation.local_iso(summer) != presentation.local_iso(winter)


async def test_the_invoice_is_german_by_default_and_english_on_request(client, riders, engine, app):
    a = riders[0]
    app.state.clock = lambda: DECEMBER
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, DECEMBER)
    (listed,) = (
        await client.get(f"/v1/passengers/{a.passenger_id}/invoices", headers=a.auth)
    ).json()
    url = f"/v1/passengers/{a.passenger_id}/invoices/{listed['invoice_id']}"
    german = (await client.get(f"{url}/html", headers=a.auth)).text
    english = (await client.get(f"{url}/html?lang=en", headers=a.auth)).text
    assert '<html lang="de">' in german
    assert "Gesamtbetrag" in german
    assert "Invoice" not in german
    assert '<html lang="en">' in english
    assert "Total" in english
    assert "Gesamtbetrag" not in english
    assert (await client.get(f"{url}/html?lang=fr", headers=a.auth)).status_code == 422
    document = (await client.get(url, headers=a.auth)).text
    assert "provenance" not in document
    balance = await client.get(
        f"/v1/passengers/{a.passenger_id}/balance?month={NOV}", headers=a.auth
    )
    assert "Gesamtbetrag" in balance.json()["explanation"]
    balance_en = await client.get(
        f"/v1/passengers/{a.passenger_id}/balance?month={NOV}&lang=en", headers=a.auth
    )
    assert "Total" in balance_en.json()["explanation"]
