"""The passenger web app in Debian's Chromium at 360 px (issue 16 item 3): a rider of the
prepared October (``test_browser.prepared``) signs in with their passenger number and token,
sees the month's trips and best price, opens the invoice by its signed link, and finds no
ticket while not on board; every ``/app`` page fits the screen and axe-core finds nothing
serious or critical on it."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from tests.web.axe import axe_script, blocking_violations, describe
from tests.web.test_browser import (  # noqa: F401 - fixtures used here too
    CHROMIUM,
    CHROMIUM_ARGS,
    OCTOBER,
    Prepared,
    prepared,
    server,
)

TOKEN = "pt_browser_check_token_0123456789abcdef"
PAGES = ("/app/", "/app/month", "/app/invoices", "/app/disputes", "/app/tickets", "/app/account")


def known_token(prepared: Prepared) -> None:  # noqa: F811
    """Give rider A a token the test knows (sign-up shows a token once; A was made
    without the app)."""
    path = prepared.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE passengers SET token_sha256 = ? WHERE passenger_id = ?",
            (hashlib.sha256(TOKEN.encode()).digest(), prepared.passenger_id),
        )


@pytest.mark.slow
def test_a_rider_uses_the_app_on_a_small_screen(server: str, prepared: Prepared) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    known_token(prepared)
    axe = str(axe_script())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # bypass_csp: axe-core is injected as a script the pages' CSP would refuse.
            page = browser.new_page(viewport={"width": 360, "height": 800}, bypass_csp=True)
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            page.goto(f"{server}/app/")
            expect(page).to_have_url(f"{server}/app/start")
            # A wrong key: the refusal in German, the server's own words marked as English.
            page.get_by_label("Fahrgast-Nummer").fill(prepared.passenger_id)
            page.get_by_label("Zugangsschlüssel").fill("pt_wrong")
            page.get_by_role("button", name="Anmelden").click()
            flash = page.locator("#flash")
            expect(flash).to_contain_text(
                "Fehler 401: Nicht angemeldet oder Zugangsschlüssel falsch."
            )
            expect(flash.locator("span[lang=en]")).not_to_be_empty()
            page.get_by_label("Fahrgast-Nummer").fill(prepared.passenger_id)
            page.get_by_label("Zugangsschlüssel").fill(TOKEN)
            page.get_by_role("button", name="Anmelden").click()
            expect(page.locator("#flash")).to_have_text("Angemeldet.")

            page.goto(f"{server}/app/month?month={OCTOBER}")
            expect(page.locator("#trips > li")).to_have_count(2)
            expect(page.locator("#trips > li").first).to_contain_text("R61")
            expect(page.locator("#price")).to_contain_text("€")

            page.goto(f"{server}/app/invoices")
            expect(page.locator("#invoices > li").first).to_contain_text(OCTOBER)
            page.get_by_role("button", name=f"Rechnung {OCTOBER}, Version 1 öffnen").click()
            page.wait_for_url("**/app/invoices/open/**")
            expect(page.get_by_role("heading", level=1)).to_contain_text(f"Rechnung {OCTOBER}")

            page.goto(f"{server}/app/?lang=en")
            expect(page.locator("#ticket")).to_contain_text("No ticket")
            expect(page.locator("#live")).not_to_be_empty()

            for path in PAGES:
                for lang in ("de", "en"):
                    page.goto(f"{server}{path}?lang={lang}")
                    expect(page.locator("h1")).to_be_visible()
                    page.wait_for_timeout(300)  # the script fills the page
                    page.add_script_tag(path=axe)
                    found = blocking_violations(page)
                    assert not found, f"{path} ({lang}): {describe(found)}"
                    width = page.evaluate("() => document.documentElement.scrollWidth")
                    assert width <= 360, f"{path} ({lang}) is {width} px wide"
            assert errors == []
        finally:
            browser.close()
