"""``bibo notifications``: what the operator of a deployment needs for Web Push."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from backend.notifications.push import generate_vapid_keys


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bibo notifications")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser(
        "vapid-keys",
        help="print a new VAPID key pair as BIBO_ settings (keep the private key secret: "
        "put it in the server's environment, never in the repository)",
    )
    parser.parse_args(list(argv))
    private, public = generate_vapid_keys()
    sys.stdout.write(
        f"BIBO_VAPID_PRIVATE_KEY={private}\nBIBO_VAPID_PUBLIC_KEY={public}\n"
        "BIBO_VAPID_SUBJECT=mailto:<a contact address of the operator>\n"
    )
    return 0
