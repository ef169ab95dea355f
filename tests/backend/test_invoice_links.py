"""Invoices open by a short-lived signed link (issue 16 item 3), not a Bearer header: the
passenger asks for a link to their own invoice, the link opens the printable invoice without
a token until it expires, a changed or foreign link opens nothing, and a version a later one
replaced says so."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.app_web import links
from backend.app_web.const import INVOICE_LINK_TTL_S
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction

NOV = "2026-11"
NOW = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def invoices(app, engine, riders):
    """November closed: each rider's invoice, version 1."""
    with transaction(make_sessionmaker(engine)) as session:
        issued = billing_service.close_month(session, NOV, NOW)
    assert issued
    return {i.passenger_id: i.invoice_id for i in issued}


@pytest.fixture
def clock(app) -> Clock:
    c = Clock(NOW)
    app.state.clock = c
    return c


async def link_for(client, rider, invoice_id: int, lang: str = "de"):
    return await client.post(
        f"/v1/passengers/{rider.passenger_id}/invoices/{invoice_id}/link",
        params={"lang": lang},
        headers=rider.auth,
    )


async def test_a_link_opens_the_invoice_without_a_token_until_it_expires(
    client, riders, invoices, clock
):
    rider = riders[0]
    response = await link_for(client, rider, invoices[rider.passenger_id])
    assert response.status_code == 200
    body = response.json()
    assert body["url"].startswith("/app/invoices/open/")
    assert dt.datetime.fromisoformat(body["expires_at"]) == NOW + dt.timedelta(
        seconds=INVOICE_LINK_TTL_S
    )

    page = await client.get(body["url"])  # no Authorization header
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert "Rechnung 2026-11" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "Ersetzt durch" not in page.text

    clock.now = NOW + dt.timedelta(seconds=INVOICE_LINK_TTL_S - 1)
    assert (await client.get(body["url"])).status_code == 200
    clock.now = NOW + dt.timedelta(seconds=INVOICE_LINK_TTL_S)
    expired = await client.get(body["url"])
    assert expired.status_code == 410
    assert "Der Link ist abgelaufen" in expired.text
    assert "Rechnung 2026-11" not in expired.text


async def test_the_link_keeps_the_language(client, riders, invoices, clock):
    rider = riders[0]
    body = (await link_for(client, rider, invoices[rider.passenger_id], "en")).json()
    page = await client.get(body["url"])
    assert '<html lang="en">' in page.text
    assert "Invoice 2026-11" in page.text


async def test_a_changed_or_foreign_link_opens_nothing(client, app, riders, invoices, clock):
    a, b = riders
    url = (await link_for(client, a, invoices[a.passenger_id])).json()["url"]
    token = url.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await client.get(f"/app/invoices/open/{tampered}")).status_code == 404
    # Signed with another key (another deployment): not bibo's link.
    forged, _ = links.sign("x" * 40, a.passenger_id, invoices[b.passenger_id], "de", NOW, 300)
    assert (await client.get(f"/app/invoices/open/{forged}")).status_code == 404
    # B's invoice through A's path, A's token: not found, ids are not probeable.
    assert (await link_for(client, a, invoices[b.passenger_id])).status_code == 404
    # Someone else's path with A's token.
    foreign = await client.post(
        f"/v1/passengers/{b.passenger_id}/invoices/{invoices[b.passenger_id]}/link",
        headers=a.auth,
    )
    assert foreign.status_code == 404
    no_token = await client.post(
        f"/v1/passengers/{a.passenger_id}/invoices/{invoices[a.passenger_id]}/link"
    )
    assert no_token.status_code == 401


async def test_a_superseded_version_says_so(client, engine, riders, invoices, clock):
    rider = riders[0]
    first = invoices[rider.passenger_id]
    with transaction(make_sessionmaker(engine)) as session:
        v1 = billing_repo.invoice(session, first)
        billing_repo.add_invoice(
            session, rider.passenger_id, NOV, 2, v1.total_cents, v1.document, NOW
        )
    old = (await link_for(client, rider, first)).json()["url"]
    page = await client.get(old)
    assert page.status_code == 200
    assert "Ersetzt durch Version 2" in page.text


async def test_a_link_dies_with_the_account(client, riders, invoices, clock):
    rider = riders[0]
    url = (await link_for(client, rider, invoices[rider.passenger_id])).json()["url"]
    assert (
        await client.delete(f"/v1/passengers/{rider.passenger_id}", headers=rider.auth)
    ).status_code == 204
    assert (await client.get(url)).status_code == 404


def test_link_tokens_read_back_and_expire():
    token, expires = links.sign("k" * 40, "pas_1", 7, "en", NOW, 60)
    link = links.read("k" * 40, token, NOW)
    assert link == links.InvoiceLink("pas_1", 7, "en", expires)
    with pytest.raises(links.LinkError) as exc:
        links.read("k" * 40, token, expires)
    assert exc.value.reason is links.LinkErrorReason.EXPIRED
    with pytest.raises(links.LinkError) as exc:
        links.read("other-key" * 5, token, NOW)
    assert exc.value.reason is links.LinkErrorReason.INVALID
