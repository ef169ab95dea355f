"""Notifications (issue 16): be-in, be-out and "still on board?" queued by reconciliation at
most once per (passenger, trip, kind), however often a day is reconciled; the drain makes
them messages and pushes each once through the sender seam (no network); the event stream
gives each passenger their own only."""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import json
import re
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from backend import cli, models
from backend.api.app import reconcile_dirty_units
from backend.billing.presentation import local_text
from backend.const import CLOSE_AFTER_SILENCE_MS, LOW_CONFIDENCE
from backend.db import make_sessionmaker, transaction
from backend.notifications import repository as notifications_repo
from backend.notifications import service as notifications_service
from backend.notifications.const import NOTIFY_MAX_AGE_MS, PUSH_RETRY_DELAYS_S
from backend.notifications.push import (
    PushOutcome,
    Subscription,
    classify_status,
    endpoint_allowed,
    generate_vapid_keys,
    webpush_sender,
)
from backend.notifications.queue import Kind, TripState, kinds_for
from backend.notifications.schemas import ENDPOINT_PATTERN, PushSubscriptionIn
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_of
from backend.trips import service as trips_service
from tests.backend.conftest import Phone, post_batch, register_phone
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, heartbeat, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 5)]
T0 = 1_795_420_000_000
LAST_DEPARTURE = T0 + (len(STOPS) - 1) * (DWELL_MS + DRIVE_MS) + DWELL_MS
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123"
KEYS = {"p256dh": "B" + "A" * 86, "auth": "c2VjcmV0LWF1dGg"}


def at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


class FakeSender:
    """The push seam: records what would be posted (and under which topic), answers
    ``outcome``, or the next of ``script`` while it lasts."""

    def __init__(
        self, outcome: PushOutcome = PushOutcome.DELIVERED, script: tuple[PushOutcome, ...] = ()
    ) -> None:
        self.outcome = outcome
        self.script = list(script)
        self.sent: list[tuple[Subscription, dict]] = []
        self.topics: list[str] = []

    def __call__(self, subscription: Subscription, data: str, topic: str) -> PushOutcome:
        self.sent.append((subscription, json.loads(data)))
        self.topics.append(topic)
        return self.script.pop(0) if self.script else self.outcome


def stored(engine, passenger_id: str) -> list[tuple[str, str]]:
    with make_sessionmaker(engine)() as session:
        return sorted(
            (n.kind, n.status)
            for n in notifications_repo.passenger_notifications(session, passenger_id)
        )


def reconcile_again(app) -> None:
    state = app.state
    trips_service.reconcile_day(state.sessions, service_day_of(T0), state.resolvers, state.clock)


def drain(app, sender) -> notifications_service.DrainResult:
    state = app.state
    return notifications_service.drain(state.sessions, state.clock(), state.stop_names, sender)


# --- the rules ------------------------------------------------------------------------------


def test_an_open_trip_is_a_be_in_and_a_closed_one_a_be_out():
    now = T0 + 60_000
    sure = TripState("open", 0.99, T0, T0 + 30_000)
    assert kinds_for(sure, now) == [Kind.BE_IN]
    unsure = TripState("open", LOW_CONFIDENCE - 0.01, T0, T0 + 30_000)
    assert kinds_for(unsure, now) == [Kind.BE_IN, Kind.STILL_ON_BOARD]
    assert kinds_for(TripState("closed", 0.5, T0, T0 + 30_000), now) == [Kind.BE_OUT]


def test_old_rides_and_conflict_losers_are_not_notified():
    now = T0 + NOTIFY_MAX_AGE_MS + 1
    assert kinds_for(TripState("open", 0.99, T0, T0), now) == []
    assert kinds_for(TripState("closed", 0.99, T0 - 60_000, T0), now) == []
    lost = TripState("open", 0.99, T0, T0, conflict_lost=True)
    assert kinds_for(lost, T0 + 1) == []


def test_push_endpoints_must_be_a_known_push_service_over_https():
    assert endpoint_allowed(ENDPOINT)
    assert endpoint_allowed("https://web.push.apple.com/QGx")
    assert not endpoint_allowed("http://fcm.googleapis.com/fcm/send/x")
    assert not endpoint_allowed("https://fcm.googleapis.com.evil.example/x")
    assert not endpoint_allowed("https://127.0.0.1/x")
    assert not endpoint_allowed("https://user@fcm.googleapis.com/x")


def test_push_hosts_are_known_in_any_letter_case():
    # A URL's scheme and host are case-insensitive: the schema's pattern and the service's
    # check take the same endpoints.
    for endpoint in ("HTTPS://FCM.GOOGLEAPIS.COM/fcm/send/X", "https://Web.Push.Apple.com/Q"):
        assert endpoint_allowed(endpoint)
        assert PushSubscriptionIn.model_validate({"endpoint": endpoint, "keys": KEYS})
    with pytest.raises(ValidationError, match="endpoint"):
        PushSubscriptionIn.model_validate(
            {"endpoint": "HTTPS://FCM.GOOGLEAPIS.COM.EVIL.EXAMPLE/x", "keys": KEYS}
        )


# --- reconciliation queues, at most once ------------------------------------------------------


async def test_be_in_and_be_out_at_most_once_however_often_reconciled(
    app, client, vehicle, engine, phone: Phone
):
    subscribed = await client.post(
        f"/v1/passengers/{phone.passenger_id}/push-subscriptions",
        json={"endpoint": ENDPOINT, "keys": KEYS, "expirationTime": None},
        headers=phone.auth,
    )
    assert subscribed.status_code == 204
    batches = journey_batches(
        "RLG-4711", "R61-1", STOPS, T0, [Rider(phone.device_key, 0, 3)], chunk_ms=10_000
    )
    for body in batches:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    # The uploads are signed at the wall clock; reconciliation runs at the data's time.
    real_clock = app.state.clock
    app.state.clock = lambda: at(LAST_DEPARTURE + 10_000)
    reconcile_dirty_units(app)
    first = stored(engine, phone.passenger_id)
    assert ("be_in", "queued") in first
    for _ in range(3):
        reconcile_again(app)
    assert stored(engine, phone.passenger_id) == first

    sender = FakeSender()
    result = drain(app, sender)
    assert result.ready == len(first)
    assert result.pushed == len(first)
    kinds = [m["kind"] for _, m in sender.sent]
    assert sorted(kinds) == sorted(k for k, _ in first)
    subscription, be_in = next((s, m) for s, m in sender.sent if m["kind"] == "be_in")
    assert subscription == Subscription(ENDPOINT, KEYS["p256dh"], KEYS["auth"])
    assert be_in["version"] == 1
    assert be_in["stop_id"] == STOPS[0]
    assert be_in["texts"]["de"]["title"] == "Eingecheckt"
    assert "RLG-4711" in be_in["texts"]["de"]["body"]
    assert be_in["stop_name"] in be_in["texts"]["en"]["body"]

    # Nothing twice: neither another drain nor another reconciliation sends again.
    reconcile_again(app)
    assert drain(app, sender) == notifications_service.DrainResult()
    assert len(sender.sent) == len(first)

    # The bus runs on empty: the trip closes, and the be-out comes once.
    close = LAST_DEPARTURE + CLOSE_AFTER_SILENCE_MS + 1_000
    late = heartbeat(batches[-1]["seq"] + 1, close)
    app.state.clock = real_clock
    assert (await post_batch(client, vehicle, late)).status_code == 200
    app.state.clock = lambda: at(close + 5_000)
    reconcile_dirty_units(app)
    reconcile_again(app)
    reconcile_again(app)
    assert [k for k, _ in stored(engine, phone.passenger_id)].count("be_out") == 1
    drain(app, sender)
    drain(app, sender)
    be_outs = [m for _, m in sender.sent if m["kind"] == "be_out"]
    assert len(be_outs) == 1
    be_out = be_outs[0]
    assert be_out["stop_id"] == STOPS[3]
    assert isinstance(be_out["price_cents"], int)
    assert be_out["price_cents"] > 0
    assert local_text(be_out["at"], with_date=False)[:5] in be_out["texts"]["de"]["body"]
    assert "€" in be_out["texts"]["en"]["body"]


async def test_a_rider_the_model_is_unsure_of_is_asked_if_still_on_board(
    app, client, vehicle, engine, phone: Phone
):
    # A phone heard faintly (far from the scanner, in a bag): reconciliation keeps the
    # rider on board, but below LOW_CONFIDENCE, and asks once whether they still are.
    faint = Rider(phone.device_key, 0, 3, rssi=(-90, -82))
    await client.post(
        f"/v1/passengers/{phone.passenger_id}/push-subscriptions",
        json={"endpoint": ENDPOINT, "keys": KEYS},
        headers=phone.auth,
    )
    cut = T0 + 2 * (DWELL_MS + DRIVE_MS) + DWELL_MS + 60_000  # under way from the third stop
    for body in journey_batches("RLG-4711", "R61-1", STOPS, T0, [faint], chunk_ms=10_000):
        if body["sent_at"] <= cut:
            assert (await post_batch(client, vehicle, body)).status_code == 200
    app.state.clock = lambda: at(cut + 5_000)
    reconcile_dirty_units(app)
    with make_sessionmaker(engine)() as session:
        [trip] = [t for t in session.scalars(select(models.Trip)) if t.device_id == phone.device_id]
    assert trip.status == "open"
    assert trip.confidence < LOW_CONFIDENCE
    reconcile_again(app)
    assert stored(engine, phone.passenger_id) == [("be_in", "queued"), ("still_on_board", "queued")]
    sender = FakeSender()
    drain(app, sender)
    [asked] = [m for _, m in sender.sent if m["kind"] == "still_on_board"]
    assert asked["texts"]["de"]["title"] == "Noch im Bus?"
    assert "R61" in asked["texts"]["de"]["body"]
    assert asked["texts"]["en"]["title"] == "Still on board?"
    drain(app, sender)
    assert [m["kind"] for _, m in sender.sent].count("still_on_board") == 1


async def test_rides_long_over_wake_nobody(app, client, vehicle, engine, phone: Phone):
    for body in journey_batches(
        "RLG-4711", "R61-1", STOPS, T0, [Rider(phone.device_key, 0, 2)], chunk_ms=60_000
    ):
        assert (await post_batch(client, vehicle, body)).status_code == 200
    app.state.clock = lambda: at(LAST_DEPARTURE + NOTIFY_MAX_AGE_MS + 3_600_000)
    reconcile_dirty_units(app)
    assert stored(engine, phone.passenger_id) == []


async def test_a_trip_that_went_away_is_dropped_not_sent(app, engine, phone: Phone):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        notifications_repo.enqueue(
            session, [{"passenger_id": phone.passenger_id, "trip_id": "t_gone", "kind": "be_in"}]
        )
    sender = FakeSender()
    assert drain(app, sender) == notifications_service.DrainResult(dropped=1)
    assert sender.sent == []
    assert stored(engine, phone.passenger_id) == [("be_in", "dropped")]


# --- the event stream -------------------------------------------------------------------------


def ready(engine, passenger_id: str, trip_id: str, kind: str = "be_in") -> int:
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        notifications_repo.enqueue(
            session, [{"passenger_id": passenger_id, "trip_id": trip_id, "kind": kind}]
        )
        [n] = [
            n
            for n in notifications_repo.passenger_notifications(session, passenger_id)
            if n.trip_id == trip_id
        ]
        body = json.dumps({"version": 1, "id": n.notification_id, "kind": kind})
        notifications_repo.settle(session, n.notification_id, "ready", body, at(T0))
        return n.notification_id


def events(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "data" in fields:
            out.append(fields)
    return out


async def test_the_event_stream_gives_each_passenger_their_own_only(client, engine, phone):
    other = register_phone(engine)
    a1 = ready(engine, phone.passenger_id, "t_a1")
    b1 = ready(engine, other.passenger_id, "t_b1")
    a2 = ready(engine, phone.passenger_id, "t_a2", "be_out")
    url = f"/v1/passengers/{phone.passenger_id}/events"

    response = await client.get(url, params={"max_s": 0}, headers=phone.auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    assert [int(e["id"]) for e in got] == [a1, a2]
    assert [e["event"] for e in got] == ["be_in", "be_out"]
    assert json.loads(got[0]["data"])["id"] == a1
    assert b1 not in [int(e["id"]) for e in got]

    resumed = await client.get(
        url, params={"max_s": 0}, headers=phone.auth | {"Last-Event-ID": str(a1)}
    )
    assert [int(e["id"]) for e in events(resumed.text)] == [a2]

    theirs = await client.get(
        f"/v1/passengers/{other.passenger_id}/events", params={"max_s": 0}, headers=other.auth
    )
    assert [int(e["id"]) for e in events(theirs.text)] == [b1]
    # Another passenger's stream with one's own token: not found, like every own-id route.
    peek = await client.get(url, params={"max_s": 0}, headers=other.auth)
    assert peek.status_code == 404
    assert (await client.get(url, params={"max_s": 0})).status_code == 401


# --- Web Push -----------------------------------------------------------------------------------


async def subscribed_with_a_be_in(client, engine, phone) -> None:
    """The phone's passenger subscribed, with one be-in queued for an open trip."""
    await client.post(
        f"/v1/passengers/{phone.passenger_id}/push-subscriptions",
        json={"endpoint": ENDPOINT, "keys": KEYS},
        headers=phone.auth,
    )
    with transaction(make_sessionmaker(engine)) as session:
        session.add(
            models.Trip(
                trip_id="t_open",
                service_day=service_day_of(T0),
                device_id=phone.device_id,
                passenger_id=phone.passenger_id,
                vehicle_id="RLG-4711",
                journey_id="R61-1",
                line="R61",
                board_stop_id=STOPS[0],
                board_time=T0,
                alight_stop_id=STOPS[1],
                alight_time=T0 + 60_000,
                confidence=0.99,
                status="open",
            )
        )
        notifications_repo.enqueue(
            session, [{"passenger_id": phone.passenger_id, "trip_id": "t_open", "kind": "be_in"}]
        )


def pushed_count(engine, passenger_id: str) -> int:
    with make_sessionmaker(engine)() as session:
        [n] = notifications_repo.passenger_notifications(session, passenger_id)
        return n.pushed


def retries_stored(engine) -> int:
    with make_sessionmaker(engine)() as session:
        return len(list(session.scalars(select(models.PushRetry))))


async def test_a_gone_subscription_is_forgotten(app, client, engine, phone):
    await subscribed_with_a_be_in(client, engine, phone)
    sessions = make_sessionmaker(engine)
    sender = FakeSender(PushOutcome.GONE)
    result = notifications_service.drain(sessions, at(T0), {}, sender)
    assert result == notifications_service.DrainResult(ready=1)
    assert [s.endpoint for s, _ in sender.sent] == [ENDPOINT]
    with sessions() as session:
        assert notifications_repo.subscriptions(session, phone.passenger_id) == []
    assert stored(engine, phone.passenger_id) == [("be_in", "ready")]


async def test_a_push_the_service_did_not_take_is_posted_again_until_delivered(
    client, engine, phone
):
    await subscribed_with_a_be_in(client, engine, phone)
    sessions = make_sessionmaker(engine)
    sender = FakeSender(script=(PushOutcome.RETRY, PushOutcome.RETRY, PushOutcome.DELIVERED))
    first = notifications_service.drain(sessions, at(T0), {}, sender)
    assert first == notifications_service.DrainResult(ready=1, retrying=1)
    # Not due yet: nothing is posted.
    wait_1, wait_2 = (s * 1000 for s in PUSH_RETRY_DELAYS_S[:2])
    assert notifications_service.drain(sessions, at(T0 + wait_1 - 1), {}, sender) == (
        notifications_service.DrainResult()
    )
    assert len(sender.sent) == 1
    second = notifications_service.drain(sessions, at(T0 + wait_1), {}, sender)
    assert second == notifications_service.DrainResult(retrying=1)
    third = notifications_service.drain(sessions, at(T0 + wait_1 + wait_2), {}, sender)
    assert third == notifications_service.DrainResult(pushed=1)
    # The same message under the same topic each time, and counted once delivered.
    assert len(sender.sent) == 3
    assert len({json.dumps(m, sort_keys=True) for _, m in sender.sent}) == 1
    assert len(set(sender.topics)) == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", sender.topics[0])
    assert pushed_count(engine, phone.passenger_id) == 1
    assert retries_stored(engine) == 0
    later = notifications_service.drain(sessions, at(T0 + 3_600_000), {}, sender)
    assert later == notifications_service.DrainResult()
    assert len(sender.sent) == 3


async def test_retries_end_and_a_refusal_for_good_is_not_retried(client, engine, phone):
    await subscribed_with_a_be_in(client, engine, phone)
    sessions = make_sessionmaker(engine)
    sender = FakeSender(PushOutcome.RETRY)
    t = T0
    notifications_service.drain(sessions, at(t), {}, sender)
    for wait in PUSH_RETRY_DELAYS_S:
        t += wait * 1000
        notifications_service.drain(sessions, at(t), {}, sender)
    assert len(sender.sent) == 1 + len(PUSH_RETRY_DELAYS_S)
    assert retries_stored(engine) == 0
    assert pushed_count(engine, phone.passenger_id) == 0
    notifications_service.drain(sessions, at(t + 3_600_000), {}, sender)
    assert len(sender.sent) == 1 + len(PUSH_RETRY_DELAYS_S)


async def test_a_push_refused_for_good_is_posted_once(client, engine, phone):
    await subscribed_with_a_be_in(client, engine, phone)
    sessions = make_sessionmaker(engine)
    sender = FakeSender(PushOutcome.FAILED)
    assert notifications_service.drain(sessions, at(T0), {}, sender) == (
        notifications_service.DrainResult(ready=1)
    )
    notifications_service.drain(sessions, at(T0 + 3_600_000), {}, sender)
    assert len(sender.sent) == 1
    assert retries_stored(engine) == 0


async def test_a_retry_ends_with_its_subscription(client, engine, phone):
    await subscribed_with_a_be_in(client, engine, phone)
    sessions = make_sessionmaker(engine)
    sender = FakeSender(PushOutcome.RETRY)
    notifications_service.drain(sessions, at(T0), {}, sender)
    assert retries_stored(engine) == 1
    url = f"/v1/passengers/{phone.passenger_id}/push-subscriptions"
    assert (await client.delete(url, headers=phone.auth)).status_code == 204
    assert retries_stored(engine) == 0
    notifications_service.drain(sessions, at(T0 + 3_600_000), {}, sender)
    assert len(sender.sent) == 1


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (404, PushOutcome.GONE),
        (410, PushOutcome.GONE),
        (408, PushOutcome.RETRY),
        (429, PushOutcome.RETRY),
        (500, PushOutcome.RETRY),
        (503, PushOutcome.RETRY),
        (400, PushOutcome.FAILED),
        (403, PushOutcome.FAILED),
        (413, PushOutcome.FAILED),
    ],
)
def test_push_service_answers_are_read_as_rfc_8030_means_them(status, outcome):
    assert classify_status(status) is outcome


def test_the_pywebpush_sender_posts_under_the_topic_and_reads_failures(monkeypatch):
    import pywebpush
    import requests

    posted: list[dict] = []
    answers: list[BaseException | None] = [
        None,
        requests.ConnectionError("no route"),
        requests.Timeout("slow"),
        pywebpush.WebPushException("busy", response=SimpleNamespace(status_code=503)),
        pywebpush.WebPushException("gone", response=SimpleNamespace(status_code=410)),
        pywebpush.WebPushException("bad", response=SimpleNamespace(status_code=400)),
    ]

    def fake_webpush(info, data, **kwargs):
        posted.append(kwargs)
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    monkeypatch.setattr(pywebpush, "webpush", fake_webpush)
    private, _ = generate_vapid_keys()
    send = webpush_sender(private, "mailto:ops@bibo.example")
    subscription = Subscription(ENDPOINT, KEYS["p256dh"], KEYS["auth"])
    outcomes = [send(subscription, "{}", "bibo-n7") for _ in range(6)]
    assert outcomes == [
        PushOutcome.DELIVERED,
        PushOutcome.RETRY,
        PushOutcome.RETRY,
        PushOutcome.RETRY,
        PushOutcome.GONE,
        PushOutcome.FAILED,
    ]
    assert all(p["headers"]["Topic"] == "bibo-n7" for p in posted)


async def test_subscriptions_are_checked_and_removed(client, engine, phone):
    url = f"/v1/passengers/{phone.passenger_id}/push-subscriptions"
    refused = await client.post(
        url, json={"endpoint": "https://intranet.example/hook", "keys": KEYS}, headers=phone.auth
    )
    assert refused.status_code == 422
    assert "known push service" in refused.text
    assert (
        await client.post(url, json={"endpoint": ENDPOINT, "keys": KEYS}, headers=phone.auth)
    ).status_code == 204
    assert (await client.delete(url, headers=phone.auth)).status_code == 204
    with make_sessionmaker(engine)() as session:
        assert notifications_repo.subscriptions(session, phone.passenger_id) == []


async def test_account_deletion_takes_notifications_and_subscriptions(client, engine, phone):
    await client.post(
        f"/v1/passengers/{phone.passenger_id}/push-subscriptions",
        json={"endpoint": ENDPOINT, "keys": KEYS},
        headers=phone.auth,
    )
    ready(engine, phone.passenger_id, "t1")
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        passengers_service.delete_account(session, phone.passenger_id)
    with sessions() as session:
        assert notifications_repo.passenger_notifications(session, phone.passenger_id) == []
        assert notifications_repo.subscriptions(session, phone.passenger_id) == []


def test_vapid_keys_are_a_p256_pair(capsys):
    private, public = generate_vapid_keys()
    raw_public = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    raw_private = base64.urlsafe_b64decode(private + "=" * (-len(private) % 4))
    assert len(raw_public) == 65
    assert raw_public[0] == 4
    key = ec.derive_private_key(int.from_bytes(raw_private, "big"), ec.SECP256R1())
    assert key.public_key().public_numbers().x.to_bytes(32, "big") == raw_public[1:33]

    assert cli.main(["notifications", "vapid-keys"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BIBO_VAPID_PRIVATE_KEY=")
    assert "BIBO_VAPID_PUBLIC_KEY=" in out


def test_pywebpush_still_takes_what_the_sender_passes():
    """Conformance, unmocked: the installed pywebpush has the arguments ``push.py`` uses, and
    py_vapid reads the private key form ``vapid-keys`` prints."""
    from py_vapid import Vapid02
    from pywebpush import WebPushException, webpush

    params = inspect.signature(webpush).parameters
    for name in (
        "subscription_info",
        "data",
        "vapid_private_key",
        "vapid_claims",
        "ttl",
        "headers",
    ):
        assert name in params
    assert "timeout" in params
    assert issubclass(WebPushException, Exception)
    private, _ = generate_vapid_keys()
    assert Vapid02.from_string(private).private_key is not None


@pytest.mark.parametrize("lang", ["de", "en"])
def test_messages_name_the_price_in_the_riders_notation(lang):
    trip = SimpleNamespace(
        trip_id="t1",
        line="R61",
        vehicle_id="RLG-4711",
        board_stop_id=STOPS[0],
        alight_stop_id=STOPS[3],
        board_time=T0,
        alight_time=T0 + 600_000,
    )
    m = notifications_service.message(7, Kind.BE_OUT, trip, {STOPS[3]: "Soest, Markt"}, 1234)
    expected = {"de": "12,34 €", "en": "€12.34"}[lang]
    assert expected in m["texts"][lang]["body"]
    assert "Soest, Markt" in m["texts"][lang]["body"]


@settings(max_examples=300, deadline=None)
@given(st.from_regex(ENDPOINT_PATTERN, fullmatch=True).filter(lambda u: len(u) <= 1000))
def test_every_endpoint_the_schema_allows_is_accepted(endpoint: str) -> None:
    # The API schema documents which endpoints a subscription may name; the service must
    # accept every one of them (a schema-valid request refused is a broken contract).
    assert endpoint_allowed(endpoint)
    assert PushSubscriptionIn.model_validate({"endpoint": endpoint, "keys": KEYS}).endpoint


def test_a_subscription_to_an_unknown_host_is_refused_naming_the_field() -> None:
    for endpoint in (
        "https://0",
        "https://intranet.example/hook",
        "https://fcm.googleapis.com:8443/x",
    ):
        with pytest.raises(ValidationError, match="endpoint") as refused:
            PushSubscriptionIn.model_validate({"endpoint": endpoint, "keys": KEYS})
        assert "known push service" in str(refused.value)
        assert not endpoint_allowed(endpoint)
