from __future__ import annotations

import pytest

from simulator.network import NetworkError, haversine_m, load_network, parse_network


def test_builtin_network_loads():
    net = load_network()
    assert len(net.stops) == 26
    assert [ln.line for ln in net.lines] == ["R61", "S20", "R55"]
    assert net.stop("de:05974:1001").name == "Soest, Bahnhof"
    assert net.line("S20").operator == "VKU"


def test_haversine_known_distance():
    # Soest, Bahnhof -> Lippstadt, Bahnhof: about 19.6 km as the crow flies.
    d = haversine_m(51.5780, 8.1083, 51.6708, 8.3498)
    assert 18_000 < d < 20_000
    assert haversine_m(51.0, 8.0, 51.0, 8.0) == 0.0
    # One degree of latitude is ~111.2 km.
    assert haversine_m(51.0, 8.0, 52.0, 8.0) == pytest.approx(111_195, rel=1e-3)


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


def test_unknown_lookups_name_the_id():
    net = load_network()
    with pytest.raises(KeyError, match="de:00000:1"):
        net.stop("de:00000:1")
    with pytest.raises(KeyError, match="X99"):
        net.line("X99")
