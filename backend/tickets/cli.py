"""`bibo inspect …`: check an inspection ticket offline, and manage the operator's ticket keys.

`main(argv)` takes the arguments after `bibo inspect`:

- `verify PAYLOAD [--keys FILE] [--vehicle ID] [--revocations FILE] [--at ISO_TIME]`: the
  verdict on a QR code's text (`-`: read it from stdin) with the public keys of FILE (a
  public or private keyset; default `BIBO_TICKET_KEYS_FILE`) and a signed revocation list
  downloaded from `/v1/inspect/revocations`. Prints the state and the ticket's fields; exit
  code 0 for valid or provisional, 1 for any other verdict, 2 for a bad command line.
- `keys generate --kid ID --out FILE`: a new private keyset (mode 0600) of one signing key.
- `keys rotate --kid ID --file FILE`: a new signing key in FILE; the old one verifies the
  tickets it signed until they expire (`retire_at`), then is refused.
- `keys export --file FILE [--out FILE]`: the public keyset inspectors hold (no private key).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from backend.tickets import codec, keys, revocations

EXIT_ACCEPTED = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """A problem with the command line or its input; one line for stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bibo inspect", description="Inspection tickets: verify, keys.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    verify = sub.add_parser("verify", help="check a ticket's QR text offline")
    verify.add_argument("payload", help="the QR code's text ('-': read from stdin)")
    verify.add_argument("--keys", type=Path, help="keyset file (default BIBO_TICKET_KEYS_FILE)")
    verify.add_argument("--vehicle", help="the vehicle you inspect on (default: not checked)")
    verify.add_argument("--revocations", type=Path, help="signed revocation list (JSON)")
    verify.add_argument("--at", help="ISO time to check at (default now; needs an offset)")
    key_cmd = sub.add_parser("keys", help="the operator's ticket keys")
    ksub = key_cmd.add_subparsers(dest="action", required=True, parser_class=_Parser)
    gen = ksub.add_parser("generate", help="a new private keyset of one signing key")
    gen.add_argument("--kid", required=True, help="key id, 1-16 of A-Z a-z 0-9 . _ -")
    gen.add_argument("--out", type=Path, required=True)
    rot = ksub.add_parser("rotate", help="a new signing key; the old one retires later")
    rot.add_argument("--kid", required=True)
    rot.add_argument("--file", type=Path, required=True)
    exp = ksub.add_parser("export", help="the public keyset (for inspectors)")
    exp.add_argument("--file", type=Path, required=True)
    exp.add_argument("--out", type=Path, help="write here instead of stdout")
    return parser


def _now(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError as exc:
        raise _UsageError(f"--at {at!r}: expected an ISO time such as 2026-12-04T10:00Z") from exc
    if when.tzinfo is None:
        raise _UsageError(f"--at {at!r}: give the UTC offset (Z or +01:00)")
    return when


def _keys_file(given: Path | None) -> Path:
    if given is not None:
        return given
    configured = os.environ.get("BIBO_TICKET_KEYS_FILE")
    if not configured:
        raise _UsageError("--keys: no keyset file given and BIBO_TICKET_KEYS_FILE is not set")
    return Path(configured)


def _utc(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat().replace("+00:00", "Z")


def _fields(ticket: codec.Ticket) -> list[tuple[str, str]]:
    return [
        ("ticket_id", ticket.ticket_id.hex()),
        ("rider_ref", ticket.rider_ref.hex()),
        ("rider_category", ticket.rider_category),
        ("companions", ", ".join(f"{n} {c}" for c, n in ticket.companions) or "none"),
        ("vehicle_id", ticket.vehicle_id),
        ("board_stop_id", ticket.board_stop_id),
        ("boarded_at", _utc(ticket.boarded_at)),
        ("issued_at", _utc(ticket.issued_at)),
        ("valid_until", _utc(ticket.valid_until)),
        ("provisional", "yes" if ticket.provisional else "no"),
        ("key_id", ticket.key_id),
    ]


def _verify(args: argparse.Namespace) -> int:
    now = _now(args.at)
    keyset = keys.load(_keys_file(args.keys))
    revoked: frozenset[bytes] = frozenset()
    if args.revocations is not None:
        try:
            doc = json.loads(args.revocations.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise _UsageError(f"--revocations {args.revocations}: {exc}") from exc
        revoked = revocations.read(doc, keyset.keys, now.timestamp()).ticket_ids()
    payload = sys.stdin.read() if args.payload == "-" else args.payload
    verdict = codec.verify(payload, keyset.keys, now.timestamp(), args.vehicle, revoked)
    lines = [f"state: {verdict.state.value}", f"reason: {verdict.reason}"]
    if verdict.ticket is not None:
        lines += [f"{name}: {value}" for name, value in _fields(verdict.ticket)]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_ACCEPTED if verdict.state.accepted else EXIT_REFUSED


def _keys(args: argparse.Namespace) -> int:
    if args.action == "generate":
        if args.out.exists():
            raise _UsageError(f"--out {args.out}: exists; rotate it or choose another file")
        keys.save(keys.generate(args.kid), args.out, private=True)
        sys.stdout.write(f"new keyset {args.out} signing with {args.kid}\n")
    elif args.action == "rotate":
        old = keys.load(args.file)
        new = keys.rotate(old, args.kid, dt.datetime.now(dt.UTC))
        keys.save(new, args.file, private=True)
        line = f"{args.file}: {args.kid} signs"
        retire_at = new.keys[old.signing].retire_at if old.signing else None
        if retire_at is not None:
            line += f"; {old.signing} retires at {_utc(retire_at)} (retire_at {retire_at})"
        sys.stdout.write(line + "\n")
    else:
        text = json.dumps(keys.to_json(keys.load(args.file), private=False), indent=2) + "\n"
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    try:
        args = _build_parser().parse_args(argv)
        return _verify(args) if args.command == "verify" else _keys(args)
    except (_UsageError, keys.KeysetError, revocations.RevocationListError) as exc:
        sys.stderr.write("bibo inspect: " + " ".join(str(exc).splitlines()) + "\n")
        return EXIT_USAGE
