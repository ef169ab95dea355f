"""The printable invoice (``backend/templates/invoice.html``), German by default."""

from __future__ import annotations

import json

from backend import models
from backend.billing.presentation import TEXT, Lang, local_text
from backend.templating import environment


def render_invoice(
    invoice: models.Invoice,
    stop_names: dict[str, str],
    lang: Lang = "de",
    superseded_by: int | None = None,
) -> str:
    """The invoice as a printable page; ``superseded_by``: the newer version replacing it."""
    document = json.loads(invoice.document)
    return (
        environment()
        .get_template("invoice.html")
        .render(
            invoice=invoice,
            doc=document,
            stop_names=stop_names,
            w=TEXT[lang],
            lang=lang,
            at=local_text,
            superseded_by=superseded_by,
        )
    )
