"""Onboard agent: adverts/s per CPU core through decode + windowing + outbox, peak RSS, and
outbox bytes per bus-hour, on a crowded bus (200 phones advertising at 10 Hz), against a
decode-only loop over the same adverts measured in the same run.

    .venv/bin/python benchmarks/onboard.py            # one simulated bus-hour (7.2 M adverts)
    .venv/bin/python benchmarks/onboard.py --quick    # one simulated minute, extrapolated

The bus: 200 phones aboard (every advert a real bleak ``AdvertisementData`` through
``Agent.on_advertisement``), 20 % of adverts lost on the air, a stop every 2 minutes where
15 % of the phones change (arrival, doors, departure events), tokens rotating every
10 minutes, a GNSS position every second. The agent records every second and seals a batch
every 10 s into a real outbox (SQLite WAL, synchronous=FULL, gzip bodies) in a temporary
directory; nothing is uploaded, so the outbox keeps the whole hour: its bytes per bus-hour
are the pages in use at the end minus those of an empty outbox. Goals (issue 5):
>= 5,000 adverts/s per core, RSS < 100 MB, <= 5 MB of outbox per bus-hour.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the import path, and the file is named
# like the package it measures: drop the folder so ``import onboard`` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import httpx  # noqa: E402

# Loaded so that the peak RSS covers everything ``bibo onboard run`` loads.
import onboard.cli  # noqa: E402
import onboard.metrics  # noqa: E402, F401
from onboard import wire  # noqa: E402
from onboard.agent import Agent, AgentConfig  # noqa: E402
from onboard.outbox import Outbox  # noqa: E402
from onboard.scanner import AdvertisementData, BLEDevice, make_advertisement  # noqa: E402
from onboard.uploader import Uploader  # noqa: E402

GOAL_ADVERTS_PER_S = 5_000
GOAL_RSS_MB = 100.0
GOAL_MB_PER_BUS_HOUR = 5.0

T0 = 1_795_420_800_000
"""A window-, token-interval- and hour-aligned start (UTC epoch ms)."""
PHONES = 200
HZ = 10
STEP_MS = 1000 // HZ
LOSS = 0.2
STOP_EVERY_S = 120
CHURN = 0.15
VARIANTS = 16
"""Pre-built adverts per phone (RSSI noise, losses), cycled so the loop does no allocation."""
STOPS = [f"de:05974:{1001 + i}" for i in range(40)]

Advert = tuple[BLEDevice, AdvertisementData] | None


@dataclass
class Result:
    adverts: int
    cpu_s: float
    wall_s: float

    @property
    def per_core(self) -> float:
        return self.adverts / self.cpu_s if self.cpu_s > 0 else float("inf")


class Bus:
    """The phones aboard: per seat, ``VARIANTS`` pre-built adverts of its current phone."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.keys = [self.rnd.randbytes(32) for _ in range(PHONES)]
        self.base_rssi = [self.rnd.randint(-85, -55) for _ in range(PHONES)]
        self.interval = -1
        self.seats: list[list[Advert]] = []

    def build(self, seat: int) -> list[Advert]:
        token = wire.token_for_interval(self.keys[seat], self.interval)
        payload = wire.encode_payload(token, -8)
        address = f"4A:{seat // 256:02X}:{seat % 256:02X}:00:00:01"
        out: list[Advert] = []
        for _ in range(VARIANTS):
            if self.rnd.random() < LOSS:
                out.append(None)
                continue
            rssi = max(-100, min(-30, round(self.rnd.gauss(self.base_rssi[seat], 6))))
            out.append(
                make_advertisement(
                    address=address, service_data={wire.SERVICE_UUID: payload}, rssi=rssi
                )
            )
        return out

    def at(self, t_ms: int) -> None:
        """Rotate every token when a new 10-minute interval starts."""
        interval = wire.interval_of(t_ms)
        if interval != self.interval:
            self.interval = interval
            self.seats = [self.build(seat) for seat in range(PHONES)]

    def stop(self) -> None:
        """Some riders alight, others board (new keys, new tokens)."""
        for seat in range(PHONES):
            if self.rnd.random() < CHURN:
                self.keys[seat] = self.rnd.randbytes(32)
                self.base_rssi[seat] = self.rnd.randint(-85, -55)
                self.seats[seat] = self.build(seat)


class Clock:
    """The agent's data clock (UTC epoch ms), set by the driver."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def drive(seconds: int, agent: Agent, clock: Clock) -> tuple[Result, Result]:
    """Feed ``seconds`` of the bus to the agent (adverts, vehicle events, a ``record`` every
    second) and, interleaved step by step so both see the same machine load, the same
    adverts to the decode-only baseline. Returns (pipeline, baseline) CPU and wall times;
    building the adverts is timed by neither."""
    bus = Bus(seed=7)
    adverts = 0
    cpu = wall = base_cpu = base_wall = 0.0
    on_advert = agent.on_advertisement
    for step in range(seconds * HZ):
        t = T0 + step * STEP_MS
        if step % HZ == 0:
            bus.at(t)
            if step // HZ % STOP_EVERY_S == 0 and step:
                bus.stop()
        phase = step % VARIANTS
        items = [
            item
            for seat, variants in enumerate(bus.seats)
            if (item := variants[(phase + seat) % VARIANTS]) is not None
        ]
        adverts += len(items)

        c0, w0 = time.process_time(), time.perf_counter()
        for device, adv in items:
            decode_only(device, adv)
        c1, w1 = time.process_time(), time.perf_counter()
        clock.now = t
        if step % HZ == 0:
            second = step // HZ
            stop_events(agent, t, second)
            agent.on_event(
                wire.PositionEvent(t=t, lat=51.57 + second * 1e-5, lon=8.1, speed_mps=8.3)
            )
        for device, adv in items:
            on_advert(device, adv)
        if step % HZ == HZ - 1:
            clock.now = t + STEP_MS
            agent.record()
        c2, w2 = time.process_time(), time.perf_counter()
        base_cpu += c1 - c0
        base_wall += w1 - w0
        cpu += c2 - c1
        wall += w2 - w1
    return Result(adverts, cpu, wall), Result(adverts, base_cpu, base_wall)


def stop_events(agent: Agent, t: int, second: int) -> None:
    """Arrival, doors and departure around each stop (dwell 20 s)."""
    at = second % STOP_EVERY_S
    stop_id = STOPS[(second // STOP_EVERY_S) % len(STOPS)]
    if at == 0:
        agent.on_event(wire.ArrivalEvent(t=t, stop_id=stop_id))
    elif at == 2:
        agent.on_event(wire.DoorsOpenEvent(t=t))
    elif at == 18:
        agent.on_event(wire.DoorsClosedEvent(t=t))
    elif at == 20:
        agent.on_event(wire.DepartureEvent(t=t, stop_id=stop_id))


def make_agent(workdir: Path, clock: Clock) -> Agent:
    """The real agent with a real outbox; its uploader is never called (``record`` only)."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    outbox = Outbox(workdir / "outbox.sqlite3", "RLG-4711", "obu-bench", "bench")
    uploader = Uploader(client, "http://bibo.invalid", "RLG-4711", b"bench-secret", clock)
    return Agent(AgentConfig("RLG-4711", "obu-bench"), outbox, uploader, clock)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB.

    ``VmHWM`` from ``/proc`` where available: ``getrusage``'s ``ru_maxrss`` survives
    ``exec`` on Linux, so a benchmark started from a large process (pytest) would report
    the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_only(device: BLEDevice, adv: AdvertisementData) -> None:
    """The baseline: what any consumer of the advert must do, and nothing else."""
    wire.decode_payload(adv.service_data[wire.SERVICE_UUID])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one simulated minute instead of an hour"
    )
    args = parser.parse_args()
    seconds = 60 if args.quick else 3600

    print(
        f"bibo onboard benchmark: {'quick, ' if args.quick else ''}{seconds:,} simulated s of a "
        f"crowded bus ({PHONES} phones at {HZ} Hz, {LOSS:.0%} lost on the air); "
        f"Python {platform.python_version()}, one core"
    )
    with tempfile.TemporaryDirectory(prefix="bibo-bench-") as tmp:
        clock = Clock()
        agent = make_agent(Path(tmp), clock)
        outbox = agent.outbox
        empty = outbox.used_bytes()
        pipeline, base = drive(seconds, agent, clock)
        while outbox.seal(T0 + seconds * 1000, agent.config.window_ms) is not None:
            pass  # the last seconds, as the next seal would take them
        used = outbox.used_bytes() - empty
        sealed = outbox.sealed_bytes
        batches = outbox.pending_count()
        file_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
        stats = agent.stats
        outbox.close()
    peak_mb = peak_rss_mb()
    hours = seconds / 3600
    mb_per_hour = used / hours / 1e6

    ok = True

    def verdict(passed: bool) -> str:
        nonlocal ok
        ok = ok and passed
        return "OK" if passed else "MISSED"

    rate = pipeline.per_core
    print(f"{'':44}{'measured':>14}  {'goal':>12}")
    print(
        f"{'adverts/s per core, decode+window+outbox':44}{rate:>14,.0f}  "
        f"{'>= ' + format(GOAL_ADVERTS_PER_S, ','):>12}  {verdict(rate >= GOAL_ADVERTS_PER_S)} "
        f"({rate / GOAL_ADVERTS_PER_S:.1f}x the goal)"
    )
    print(
        f"{'  baseline, same adverts: decode only':44}{base.per_core:>14,.0f}  {'':>12}  "
        f"pipeline / baseline = {rate / base.per_core:.2f}"
    )
    print(
        f"{'peak RSS (MB)':44}{peak_mb:>14.1f}  {'< ' + format(GOAL_RSS_MB, '.0f'):>12}  "
        f"{verdict(peak_mb < GOAL_RSS_MB)}"
    )
    print(
        f"{'outbox bytes per bus-hour (MB)':44}{mb_per_hour:>14.2f}  "
        f"{'<= ' + format(GOAL_MB_PER_BUS_HOUR, '.0f'):>12}  "
        f"{verdict(mb_per_hour <= GOAL_MB_PER_BUS_HOUR)}"
        + (" (extrapolated from one minute)" if args.quick else "")
    )
    print(
        f"details: {pipeline.adverts:,} adverts in {pipeline.cpu_s:.1f} s CPU / "
        f"{pipeline.wall_s:.1f} s wall ({pipeline.adverts / pipeline.wall_s:,.0f}/s wall); "
        f"{stats.sighting_rows:,} sighting rows, {stats.events:,} events, {batches} batches; "
        f"sealed bodies {sealed / hours / 1e6:.2f} MB/bus-hour gzip, "
        f"outbox file {file_bytes / 1e6:.2f} MB incl. WAL; "
        f"window_full={stats.window_full}, late={stats.late_adverts}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
