"""The passenger web app ``/app`` (issue 16): a PWA doing what the phone app does against the
passenger API, German by default and English on request. ``install`` adds it to the app.

How it authenticates: the JavaScript keeps the passenger token sign-up returned (and the
device key) in the browser's ``localStorage`` and sends it as ``Authorization: Bearer``, like
the phone app; the server keeps no session and sets no cookie for ``/app``. With no
credential the browser sends on its own, a page of another site cannot make requests in the
rider's name: CSRF has nothing to ride on, and the JSON API needs no second, cookie-based way
in. The price is that a script running in the page could read the token, so the pages allow
no inline script and no script from elsewhere (``Content-Security-Policy: script-src
'self'``) and the JavaScript writes what the API returns as text, never as HTML. The one
thing that opens without the header is an invoice, by a signed link that expires
(``links.py``): links cannot carry a header, and a printable page should open like one.
"""

from __future__ import annotations

from fastapi import FastAPI

from backend.app_web.endpoints import router as api_router
from backend.app_web.routes import router as pages_router


def install(app: FastAPI) -> None:
    app.include_router(api_router)
    app.include_router(pages_router)
