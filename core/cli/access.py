"""Accounts and audit commands: ``users``, ``apikeys`` (create, list, revoke), ``audit`` (list, verify,
checkpoint), ``deidentify`` (../shared/CLI.md).

Whoever runs these commands already holds the machine's files, so the CLI acts as the operating-system
user and records every action in the audit log under that name, with the role ``os-user``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

from core.cli.common import EXIT_BAD_INPUT, EXIT_MISUSE, EXIT_OK, emit, log, safe_text
from core.errors import AccountError, LucidDxError
from core.i18n import _
from core.services import admin, deid
from core.services import audit as audit_service

OS_ROLE = audit_service.OS_ROLE
os_user = audit_service.os_user


def read_password() -> str:
    """The new password from stdin: typed twice at a terminal, else the first line of a pipe."""
    if sys.stdin.isatty():
        first = getpass.getpass(_("Password: "))
        if getpass.getpass(_("Password again: ")) != first:
            raise AccountError(_("The two passwords differ; nothing was changed. Run the command again."))
        return first
    return sys.stdin.readline().rstrip("\r\n")


class _RefusePassword(argparse.Action):
    """``--password X`` is refused without repeating X: an argument stays in shell history and ``ps``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(
            _(
                "a password is never accepted on the command line (it would stay in the shell history); "
                "type it when asked, or pipe it on stdin."
            )
        )


def cmd_users(args: argparse.Namespace) -> int:
    actor = audit_service.os_actor()
    if args.verb == "add":
        account = admin.add_account(actor, args.name, args.role, read_password())
        message = _("account {name} created with role {role}")
    elif args.verb == "disable":
        account, message = admin.set_enabled(actor, args.name, False), _("account {name} disabled")
    elif args.verb == "enable":
        account, message = admin.set_enabled(actor, args.name, True), _("account {name} enabled (and unlocked)")
    elif args.verb == "set-role":
        account, message = admin.set_role(actor, args.name, args.role), _("account {name} is now a {role}")
    else:  # list
        listing = admin.list_accounts(actor)
        emit(
            listing,
            args.json,
            lambda rows: "\n".join(
                f"{r['name']:<24} {r['role']:<10} {_('disabled') if r['disabled'] else _('enabled'):<9} "
                f"{_('last sign-in')}: {r['last_login'] or '-'}"
                for r in rows
            )
            or _("no accounts yet: create the first with 'python -m core users add NAME --role admin'"),
        )
        return EXIT_OK
    emit(account.as_dict(), args.json, lambda r: message.format(name=r["name"], role=r["role"]))
    return EXIT_OK


def cmd_apikeys(args: argparse.Namespace) -> int:
    actor = audit_service.os_actor()
    if args.verb == "create":
        key = admin.create_api_key(actor, args.user)
        emit({"user": args.user, "key": key}, args.json, lambda r: r["key"])
        log(_("This key is shown once: store it now. It acts with {user}'s role.").format(user=args.user))
    elif args.verb == "revoke":
        revoked = admin.revoke_api_key_matching(actor, args.key)
        emit(
            revoked,
            args.json,
            lambda r: _("key {prefix} of {user} revoked: it is refused from now on").format(
                prefix=r["prefix"], user=r["user"]
            ),
        )
    else:
        listing = admin.list_api_keys(actor, args.user)
        emit(
            listing,
            args.json,
            lambda rows: "\n".join(
                f"{r['prefix']}  {r['user']:<24} {r['created']}  {'revoked' if r['revoked'] else ''}" for r in rows
            ),
        )
    return EXIT_OK


def _iso(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not an ISO 8601 time, e.g. 2026-11-29 or 2026-11-29T08:00:00Z").format(text=text)
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_audit(args: argparse.Namespace) -> int:
    actor = audit_service.os_actor()
    if args.verb == "checkpoint":
        if not args.out:
            log(
                _(
                    "error: 'audit checkpoint' needs --out FILE: where to write the checkpoint (then keep a copy away "
                    "from this server)."
                )
            )
            return EXIT_MISUSE
        written = admin.write_audit_checkpoint(actor, args.out)
        emit(
            written | {"out": str(args.out)},
            args.json,
            lambda r: _(
                "checkpoint of {n} records (head {head}) written to {out}; keep a copy where this server's "
                "administrators cannot change it, and check with 'audit verify --checkpoint FILE'."
            ).format(n=r["count"], head=r["head"], out=safe_text(r["out"])),
        )
        return EXIT_OK
    if args.verb == "verify":
        result = admin.verify_audit(actor, args.checkpoint)

        def human(r: dict) -> str:
            if r["ok"]:
                text = _("audit log intact: {n} records, head {head}").format(n=r["records"], head=r["head"])
                if r["checkpoint"]:
                    text += "\n" + _("and it still holds every record of the checkpoint of {time}").format(
                        time=r["checkpoint"]
                    )
                return text
            return _("audit log BROKEN at record {seq}: {reason}").format(seq=r["broken"], reason=r["reason"])

        emit(result.as_dict(), args.json, human)
        return EXIT_OK if result.ok else EXIT_BAD_INPUT
    listing = admin.audit_records(actor, args.since, args.user, args.action, recorded=True)
    emit(
        listing,
        args.json,
        lambda rows: "\n".join(
            f"{r['time']}  {r['user']:<16} {r['role']:<10} {r['action']:<11} {r['model'] or '-':<20} "
            f"{(r['input_sha256'] or '-')[:12]:<12} {r['outcome']}" + (f"  {r['change']}" if r["change"] else "")
            for r in rows
        )
        or _("no records"),
    )
    return EXIT_OK


def cmd_deidentify(args: argparse.Namespace) -> int:
    actor = audit_service.os_actor()
    results = []
    for name in args.files:
        try:
            done = deid.deidentify_file(actor, name, args.out)
        except LucidDxError as exc:
            results.append(
                {
                    "file": name,
                    "ok": False,
                    "error": str(exc),
                    "out": None,
                    "removed": 0,
                    "burned_in_annotation": "unknown",
                }
            )
            log(safe_text(exc))
            continue
        results.append(
            {
                "file": name,
                "ok": True,
                "error": None,
                "out": done.out,
                "removed": done.removed,
                "burned_in_annotation": done.burned_in_annotation,
            }
        )

    def human(rows: list[dict]) -> str:
        lines = []
        for r in rows:
            if not r["ok"]:
                lines.append(f"{safe_text(r['file'])}: {_('not de-identified')}: {safe_text(r['error'])}")
                continue
            note = (
                ""
                if r["burned_in_annotation"] == "NO"
                else "  "
                + _("(burned-in annotation: {value}; check the pixels for text)").format(
                    value=r["burned_in_annotation"]
                )
            )
            lines.append(
                f"{safe_text(r['file'])} -> {safe_text(r['out'])}  "
                + _("{n} attributes removed or replaced").format(n=r["removed"])
                + note
            )
        return "\n".join(lines)

    emit(results, args.json, human)
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_BAD_INPUT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="accounts: add (password from stdin), list, disable, enable, set-role")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=type(p))
    q = verbs.add_parser("add", help="create an account; the password is read from stdin, never an argument")
    q.add_argument("name")
    q.add_argument("--role", required=True, choices=admin.ROLES)
    q.add_argument("--password", action=_RefusePassword, help=argparse.SUPPRESS)
    q.add_argument("--json", action="store_true")
    q = verbs.add_parser("list", help="list accounts")
    q.add_argument("--json", action="store_true")
    for verb, text in (
        ("disable", "disable an account (it can no longer sign in)"),
        ("enable", "enable (and unlock) an account"),
    ):
        q = verbs.add_parser(verb, help=text)
        q.add_argument("name")
        q.add_argument("--json", action="store_true")
    q = verbs.add_parser("set-role", help="change an account's role")
    q.add_argument("name")
    q.add_argument("role", choices=admin.ROLES)
    q.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("apikeys", help="API keys: create (printed once), list, revoke")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=type(p))
    q = verbs.add_parser("create", help="a new key for an account, printed once")
    q.add_argument("--user", required=True)
    q.add_argument("--json", action="store_true")
    q = verbs.add_parser("list", help="list keys (never the keys themselves)")
    q.add_argument("--user", default=None)
    q.add_argument("--json", action="store_true")
    q = verbs.add_parser(
        "revoke", help="revoke a key at once, named by the prefix 'apikeys list' shows, or the whole key"
    )
    q.add_argument("key", metavar="KEY_ID_OR_PREFIX")
    q.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_apikeys)

    p = sub.add_parser(
        "audit",
        help="show the audit log, 'audit verify [--checkpoint FILE]' its keyed hash chain, "
        "or write a signed 'audit checkpoint --out FILE' of its head to keep elsewhere",
    )
    p.add_argument("verb", nargs="?", choices=("verify", "checkpoint"), default=None)
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="verify: also check that the log still holds every record this checkpoint saw",
    )
    p.add_argument("--out", default=None, metavar="FILE", help="checkpoint: the file to write")
    p.add_argument("--since", type=_iso, default=None, metavar="ISO8601")
    p.add_argument("--user", default=None)
    p.add_argument("--action", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("deidentify", help="write de-identified copies of DICOM files (PS3.15 Basic Profile)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deidentify)
