"""The one module that draws QR codes (segno): a ticket's payload as SVG."""

from __future__ import annotations

import io

import segno

QR_ERROR_LEVEL = "m"
"""Medium error correction (15 %): a phone screen with a crack or glare still scans, and the
code stays small enough for a short payload at a phone's screen size."""
QR_SCALE = 4
"""SVG user units per module; the SVG scales, this only sets its intrinsic size."""


def svg(payload: str, title: str) -> bytes:
    """The QR code of ``payload`` as a stand-alone SVG document with an accessible title."""
    code = segno.make(payload, error=QR_ERROR_LEVEL, micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=QR_SCALE, border=4, title=title, xmldecl=False)
    return out.getvalue()
