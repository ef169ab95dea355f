from __future__ import annotations

import datetime as dt
import filecmp
import zipfile
from pathlib import Path

import pytest

from simulator.gtfs import EXPORT_FILES, export_gtfs, load_gtfs, municipality_from_name
from simulator.network import NetworkError

FIXTURE = Path(__file__).parent / "data" / "gtfs_builtin"


def test_fixture_is_the_export_of_the_builtin_network(network, tmp_path):
    export_gtfs(network, tmp_path, dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    for name in EXPORT_FILES:
        assert filecmp.cmp(tmp_path / name, FIXTURE / name, shallow=False), (
            f"{name} differs: regenerate with 'bibo simulate --export-gtfs "
            "tests/simulator/data/gtfs_builtin'"
        )


def test_import_of_the_fixture_is_the_builtin_network(network):
    assert load_gtfs(FIXTURE) == network


def test_import_from_zip_with_route_filter(tmp_path):
    z = tmp_path / "feed.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name in EXPORT_FILES:
            zf.write(FIXTURE / name, f"feed/{name}")
    net = load_gtfs(z, routes=["R61", "S20"])
    assert [ln.line for ln in net.lines] == ["R61", "S20"]
    assert len(net.stops) == 19


def _feed(tmp_path: Path, stops: str, stop_times: str, routes: str | None = None) -> Path:
    (tmp_path / "stops.txt").write_text(stops, "utf-8")
    (tmp_path / "routes.txt").write_text(
        routes or "route_id,route_short_name,route_long_name,route_type\nr1,R1,Ring,3\n", "utf-8"
    )
    (tmp_path / "trips.txt").write_text(
        "route_id,service_id,trip_id,direction_id\nr1,WD,t1,0\nr1,WD,t2,1\nr1,WD,t3,0\n", "utf-8"
    )
    (tmp_path / "stop_times.txt").write_text(stop_times, "utf-8")
    return tmp_path


STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    '"de:05974:1","Soest-Ampen, Kirche",51.57,8.15,1,\n'
    '"de:05974:1:1:1","Soest-Ampen, Kirche",51.57,8.15,0,de:05974:1\n'
    '"de:05978:2","Fröndenberg, Markt",51.47,7.77,,\n'
    '"de:05958:3","Wickede (Ruhr)-Wiehagen, Dorf",51.49,7.89,,\n'
)


def test_platforms_merge_into_stop_areas_and_most_common_pattern_wins(tmp_path):
    times = (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "t1,08:00:00,08:00:00,de:05974:1:1:1,1\nt1,08:05:00,08:05:00,de:05978:2,2\n"
        "t1,08:09:00,08:09:00,de:05958:3,3\n"
        "t2,09:00:00,09:00:00,de:05958:3,1\nt2,09:04:00,09:04:00,de:05978:2,2\n"
        "t2,09:09:00,09:09:00,de:05974:1,3\n"
        "t3,10:00:00,10:00:00,de:05974:1,1\nt3,10:05:00,10:05:00,de:05978:2,2\n"
    )
    net = load_gtfs(_feed(tmp_path, STOPS, times), municipalities=["Fröndenberg/Ruhr"])
    (line,) = net.lines
    assert line.stops == ("de:05974:1", "de:05978:2", "de:05958:3")
    assert net.stop("de:05974:1").municipality == "Soest"
    assert net.stop("de:05978:2").municipality == "Fröndenberg/Ruhr"
    assert net.stop("de:05958:3").municipality == "Wickede (Ruhr)"


def test_non_dhid_stop_is_refused_with_its_id(tmp_path):
    stops = "stop_id,stop_name,stop_lat,stop_lon\nS1,A,51,8\nS2,B,51.1,8\n"
    times = (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "t1,08:00:00,08:00:00,S1,1\nt1,08:05:00,08:05:00,S2,2\n"
    )
    with pytest.raises(NetworkError, match="stop_id 'S1': expected a DHID"):
        load_gtfs(_feed(tmp_path, stops, times))


def test_missing_table_and_non_bus_routes(tmp_path):
    with pytest.raises(NetworkError, match=r"stops\.txt: missing"):
        load_gtfs(tmp_path)
    times = (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "t1,08:00:00,08:00:00,de:05974:1,1\nt1,08:05:00,08:05:00,de:05978:2,2\n"
    )
    rail = "route_id,route_short_name,route_long_name,route_type\nr1,RB59,Hellweg,2\n"
    with pytest.raises(NetworkError, match="no bus route"):
        load_gtfs(_feed(tmp_path, STOPS, times, rail))


def test_municipality_from_name():
    assert municipality_from_name("Kamen-Heeren-Werve, Bahnhof") == "Kamen"
    assert municipality_from_name("Bad Sassendorf-Lohne, Dorf") == "Bad Sassendorf"
    assert municipality_from_name("Hauptbahnhof") == "unknown"
