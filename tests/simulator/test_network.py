from __future__ import annotations

import re
from collections import Counter

import pytest

from fare_engine.geo import distance_m
from simulator.network import (
    NetworkError,
    load_network,
    parse_network,
    project_m,
    stop_distance_m,
    unproject,
)

KREIS = {"05974": "Kreis Soest", "05978": "Kreis Unna", "05958": "Hochsauerlandkreis"}

MUNICIPALITIES = {
    "Kreis Soest": {
        "Anröchte", "Bad Sassendorf", "Ense", "Erwitte", "Geseke", "Lippetal", "Lippstadt",
        "Möhnesee", "Rüthen", "Soest", "Warstein", "Welver", "Werl", "Wickede (Ruhr)",
    },
    "Kreis Unna": {
        "Bergkamen", "Bönen", "Fröndenberg/Ruhr", "Holzwickede", "Kamen", "Lünen", "Schwerte",
        "Selm", "Unna", "Werne",
    },
    "Hochsauerlandkreis": {
        "Arnsberg", "Bestwig", "Brilon", "Eslohe", "Hallenberg", "Marsberg", "Medebach",
        "Meschede", "Olsberg", "Schmallenberg", "Sundern", "Winterberg",
    },
}  # fmt: skip

SKELETON = {
    "de:05974:1001": ("Soest, Bahnhof", "Soest", 51.5780, 8.1083),
    "de:05974:1010": ("Lippstadt, Bahnhof", "Lippstadt", 51.6708, 8.3498),
    "de:05978:2001": ("Unna, Bahnhof", "Unna", 51.5353, 7.6886),
    "de:05978:2009": ("Bergkamen-Rünthe, Marina", "Bergkamen", 51.6400, 7.6600),
    "de:05958:3001": ("Arnsberg, Bahnhof", "Arnsberg", 51.3970, 8.0640),
    "de:05958:3007": ("Meschede, Bahnhof", "Meschede", 51.3530, 8.2900),
}


@pytest.fixture(scope="module")
def net():
    return load_network()


def test_the_three_counties_in_full(net):
    assert len(net.stops) >= 300
    assert len(net.lines) >= 25
    munis = {s.municipality for s in net.stops.values()}
    assert munis == set().union(*MUNICIPALITIES.values())
    assert len(munis) == 36
    for s in net.stops.values():
        m = re.fullmatch(r"de:(05974|05978|05958):\d{4}", s.stop_id)
        assert m, s.stop_id
        assert s.municipality in MUNICIPALITIES[KREIS[m.group(1)]], s
        # Inside the three counties' bounding box.
        assert 51.05 < s.lat < 51.75, s
        assert 7.40 < s.lon < 8.95, s
    assert len({s.name for s in net.stops.values()}) == len(net.stops)


def test_skeleton_stops_and_lines_are_kept(net):
    skeleton = (
        [f"de:05974:{n}" for n in range(1001, 1011)]
        + [f"de:05978:{n}" for n in range(2001, 2010)]
        + [f"de:05958:{n}" for n in range(3001, 3008)]
    )
    assert list(net.stops)[:26] == skeleton
    for sid, (name, muni, lat, lon) in SKELETON.items():
        s = net.stop(sid)
        assert (s.name, s.municipality, s.lat, s.lon) == (name, muni, lat, lon)
    assert [ln.line for ln in net.lines[:3]] == ["R61", "S20", "R55"]
    assert net.line("R61").stops == tuple(f"de:05974:{n}" for n in range(1001, 1011))
    assert net.line("S20").operator == "VKU"


def test_every_stop_served_and_hubs_where_lines_meet(net):
    served = Counter(s for ln in net.lines for s in ln.stops)
    assert set(served) == set(net.stops)
    names = {net.stop(h).name for h in net.hubs}
    for hub in (
        "Soest, Bahnhof",
        "Lippstadt, Bahnhof",
        "Unna, Bahnhof",
        "Arnsberg, Bahnhof",
        "Meschede, Bahnhof",
        "Brilon, Bahnhof Stadt",
        "Winterberg, Busbahnhof",
    ):
        assert hub in names
    assert len(net.lines_at("de:05974:1001")) >= 8
    assert net.is_hub("de:05974:1001")
    assert not net.is_hub("de:05974:1006")


def test_plausible_stop_spacing(net):
    for ln in net.lines:
        for a, b in zip(ln.stops, ln.stops[1:], strict=False):
            d = stop_distance_m(net.stop(a), net.stop(b))
            assert 150 < d < 15_000, (ln.line, a, b, d)


def test_subset_keeps_only_the_lines_stops(net):
    sub = net.subset(("R61", "C1"))
    assert [ln.line for ln in sub.lines] == ["R61", "C1"]
    assert set(sub.stops) == set(net.line("R61").stops) | set(net.line("C1").stops)


def test_haversine_known_distance():
    # Soest, Bahnhof -> Lippstadt, Bahnhof: about 19.6 km as the crow flies.
    d = distance_m(51.5780, 8.1083, 51.6708, 8.3498)
    assert 18_000 < d < 20_000
    assert distance_m(51.0, 8.0, 51.0, 8.0) == 0.0
    assert distance_m(51.0, 8.0, 52.0, 8.0) == pytest.approx(111_195, rel=1e-3)


def test_projection_round_trip_and_scale(net):
    a, b = net.stop("de:05974:1001"), net.stop("de:05974:1010")
    (xa, ya), (xb, yb) = project_m(a.lat, a.lon), project_m(b.lat, b.lon)
    assert ((xa - xb) ** 2 + (ya - yb) ** 2) ** 0.5 == pytest.approx(
        stop_distance_m(a, b), rel=5e-3
    )
    assert unproject(xa, ya) == pytest.approx((a.lat, a.lon))


def test_wrong_version_refused():
    with pytest.raises(NetworkError, match="version: expected 1, got 2"):
        parse_network({"version": 2, "stops": [], "lines": []})


def test_unknown_stop_in_line_refused():
    doc = {
        "version": 1,
        "stops": [{"stop_id": "de:1:1", "name": "A", "municipality": "X", "lat": 51, "lon": 8}],
        "lines": [{"line": "L", "name": "L", "operator": "O", "stops": ["de:1:1", "de:1:2"]}],
    }
    with pytest.raises(NetworkError, match=r"lines\[0\]\.stops: unknown stop_id 'de:1:2'"):
        parse_network(doc)


def test_unknown_lookups_name_the_id(net):
    with pytest.raises(KeyError, match="de:00000:1"):
        net.stop("de:00000:1")
    with pytest.raises(KeyError, match="X99"):
        net.line("X99")
