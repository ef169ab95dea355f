"""The operator pages' search: passenger, device, trip and vehicle ids, whole or by their
beginning, with LIKE's wildcards taken literally and case kept, on every page's header."""

from __future__ import annotations

import re

from backend.operators.web.const import SEARCH_LIMIT
from tests.web.conftest import login
from tests.web.ops_data import VEHICLES, seed

_HIT = re.compile(
    r'<tr class="hit hit-(\w+)">\s*<td>\w+</td>\s*<td><code>([^<]+)</code></td>\s*<td>(\w+)</td>'
)


async def _hits(client, q: str) -> list[tuple[str, str, str]]:
    response = await client.get("/ops/search", params={"q": q})
    assert response.status_code == 200, response.text
    return _HIT.findall(response.text)


async def test_exact_ids_of_every_kind_are_found(client, engine, clock):
    data = seed(engine, trips=40)
    await login(client, engine, "viewer")
    passenger = data.passengers[0]
    device = next(d for d, p in data.devices.items() if p == passenger)
    trip = data.trips[3]
    assert ("passenger", passenger, "exact") in await _hits(client, passenger)
    assert await _hits(client, device) == [("device", device, "exact")]
    assert await _hits(client, trip.trip_id) == [("trip", trip.trip_id, "exact")]
    assert await _hits(client, "RLG-4711") == [("vehicle", "RLG-4711", "exact")]
    page = (await client.get("/ops/search", params={"q": device})).text
    assert f'href="/ops/passengers/{passenger}"' in page  # the device's owner
    assert f'href="/ops/trips?device={device}"' in page
    assert (
        f'href="/ops/trips/{trip.trip_id}"'
        in (await client.get("/ops/search", params={"q": trip.trip_id})).text
    )


async def test_a_prefix_finds_every_id_it_starts_and_only_those(client, engine, clock):
    data = seed(engine, trips=40)
    await login(client, engine, "viewer")
    assert await _hits(client, "VKU") == [
        ("vehicle", v, "prefix") for v in sorted(VEHICLES) if v.startswith("VKU")
    ]
    trip = data.trips[0]
    prefix = trip.trip_id[:9]
    expected = sorted(t.trip_id for t in data.trips if t.trip_id.startswith(prefix))
    found = await _hits(client, prefix)
    assert [i for kind, i, _ in found if kind == "trip"] == expected
    # Every trip id starts with trp_, but only SEARCH_LIMIT are listed.
    many = await _hits(client, "trp_")
    assert len([h for h in many if h[0] == "trip"]) == SEARCH_LIMIT
    # The exact match comes first, then the ids it starts.
    passenger = data.passengers[2]
    assert (await _hits(client, passenger))[0] == ("passenger", passenger, "exact")


async def test_wildcards_are_literal_and_case_counts(client, engine, clock):
    seed(engine, trips=20)
    await login(client, engine, "viewer")
    for q in ("%", "trp%", "t_p", "_", "vku", "rlg-4711"):
        assert await _hits(client, q) == [], q
        assert (
            "No passenger, device, trip or vehicle id"
            in (await client.get("/ops/search", params={"q": q})).text
        )


async def test_search_input_is_checked_and_needs_a_login(client, engine, clock):
    assert (await client.get("/ops/search?q=x")).status_code == 303
    await login(client, engine, "viewer")
    empty = await client.get("/ops/search")
    assert empty.status_code == 200
    assert 'role="search"' in empty.text
    for bad in ("a\x01b", "x" * 500):
        response = await client.get("/ops/search", params={"q": bad})
        assert response.status_code == 422
        assert "q: expected at most" in response.text


async def test_every_page_has_the_search_box(client, engine, riders, clock):
    await login(client, engine, "viewer")
    passenger = riders[0].passenger_id
    for path in (
        "/ops/",
        "/ops/trips",
        "/ops/disputes",
        "/ops/entitlements",
        "/ops/revenue",
        "/ops/operations",
        "/ops/quality",
        "/ops/passengers",
        f"/ops/passengers/{passenger}",
        f"/ops/passengers/{passenger}/invoices",
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert '<form class="search" role="search" aria-label="Find by id"' in page.text
        assert '<label for="ops-search">' in page.text
