"""`tillit`: serve the chat, and manage staff accounts, from one command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tillit.chat_server import config_files
from tillit.chat_server.settings import Settings, SettingsError, load_settings, public_origins

log = logging.getLogger("tillit")


def _settings(args: argparse.Namespace) -> Settings:
    config_dir = getattr(args, "config_dir", None)
    if config_dir is not None:
        if not Path(config_dir).is_dir():
            raise SystemExit(f"tillit: --config-dir {config_dir}: no such folder")
        # Read at every lookup (config_files.py), so set before anything is read.
        os.environ[config_files.ENV_VAR] = str(Path(config_dir).resolve())
    server: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            server[name] = value
    return load_settings(getattr(args, "config", None), overrides={"server": server})


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder for the SQLite files (default ./var)")
    parser.add_argument("--config", help="a TOML file with settings to override")
    parser.add_argument("--config-dir", help="the operator's folder: tillit.toml and any "
                        "shipped config file to replace (default: $TILLIT_CONFIG_DIR)")


def _command(subparsers: Any, name: str, help: str, func: Callable[[argparse.Namespace], int],
             *positionals: str) -> argparse.ArgumentParser:
    """A subcommand taking only `positionals` and the common options, run by `func`."""
    parser = subparsers.add_parser(name, help=help)
    for positional in positionals:
        parser.add_argument(positional)
    _add_common(parser)
    parser.set_defaults(func=func)
    return parser


def _group(subparsers: Any, name: str, help: str) -> Any:
    """A command whose work is in its own subcommands (`tillit NAME ...`)."""
    group = subparsers.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", required=True)


def production_problems(settings: Settings) -> list[str]:
    """Settings a real installation must have; `server.development` relaxes them (a
    laptop on 127.0.0.1), so the shipped placeholders never reach a young person."""
    if settings.server.development:
        return []
    problems = []
    if not settings.resources.social_services_number.strip():
        problems.append(
            "resources.social_services_number is empty: set your region's social services "
            "on-call number (or TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER); it is never 112"
        )
    return problems


def key_problems(settings: Settings) -> list[str]:
    """With a shared database (several machines) both keyrings must be named and present
    on this machine (counselor_console/key_files.py); none is ever created then."""
    from tillit.counselor_console.key_files import KeyConfigError, load_keyring

    if not settings.server.database_url.strip():
        return []
    problems = []
    for configured, setting in ((settings.notes.key_file, "notes.key_file"),
                                (settings.console.totp_key_file, "console.totp_key_file")):
        try:
            load_keyring(configured, Path(), shared=True, setting=setting)
        except (KeyConfigError, OSError) as exc:
            problems.append(str(exc))
    return problems


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from tillit.app import create_app
    from tillit.safety.access_log import AnonymousAccessLogger, configure_logging

    configure_logging(args.log_level)
    settings = _settings(args)
    problems = production_problems(settings)
    if problems:
        for problem in problems:
            print(f"tillit: not starting: {problem}", file=sys.stderr)
        print("tillit: (server.development = true relaxes this on a development machine)",
              file=sys.stderr)
        return 2
    public_origins(settings)  # a SettingsError (exit 2) before anything is touched
    for problem in key_problems(settings):
        print(f"tillit: not starting: {problem}", file=sys.stderr)
        return 2
    refused = _migrate_before_serving(settings)
    if refused:
        return refused
    app = create_app(settings)

    async def tune_gc(app: web.Application) -> None:
        # Full collections over thousands of sockets make the latency tail
        # (docs/architecture.md, measured fact 1).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        # The SQLite writer thread needs the GIL once per row; at the default 5 ms switch
        # interval a busy event loop makes each group commit wait tens of ms (bench/README).
        sys.setswitchinterval(0.0005)

    app.on_startup.append(tune_gc)
    host, port = settings.server.host, settings.server.port
    log.info("Tillit on http://%s:%s (data in %s)", host, port, settings.data_dir)
    web.run_app(
        app, host=host, port=port, access_log_class=AnonymousAccessLogger, print=None,
        handle_signals=True,
    )
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (12 characters or more): ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("tillit: the passwords differ")
    return first


def _durable_url(settings: Settings) -> str:
    from tillit.durable.engine import database_url

    return database_url(settings.server.database_url, settings.data_dir)


def _refuse_newer_schema(exc: Exception) -> SystemExit:
    print(f"tillit: not starting: {exc}", file=sys.stderr)
    return SystemExit(2)


def _migrate_before_serving(settings: Settings) -> int:
    """Migrate the durable database before listening; 2 if its schema is too new."""
    from tillit.durable.engine import shown
    from tillit.durable.migrate import SchemaTooNew, open_migrated

    async def migrate() -> None:
        engine = await open_migrated(_durable_url(settings))
        await engine.dispose()

    log.info("durable database: %s", shown(_durable_url(settings)))
    try:
        asyncio.run(migrate())
    except SchemaTooNew as exc:
        print(f"tillit: not starting: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - unreachable, refused: said without the URL's password
        print(f"tillit: not starting: the durable database {shown(_durable_url(settings))} "
              f"cannot be used: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _with_db(settings: Settings, action):  # noqa: ANN001, ANN202
    from tillit.counselor_console.totp_crypto import KeyFileMissing, open_sealer
    from tillit.durable.migrate import SchemaTooNew, open_migrated

    try:
        engine = await open_migrated(_durable_url(settings))
    except SchemaTooNew as exc:
        raise _refuse_newer_schema(exc) from None
    try:
        try:
            await open_sealer(engine, settings)
        except KeyFileMissing as exc:
            raise SystemExit(f"tillit: {exc}") from None
        return await action(engine)
    finally:
        await engine.dispose()


def _print_secret(args: argparse.Namespace, username: str, role: str, secret: str) -> None:
    from tillit.counselor_console.accounts import totp_uri

    if args.json:
        print(json.dumps({"username": username, "role": role, "totp_secret": secret}))
        return
    print(f"Account {username} ({role}) is ready.")
    print(f"TOTP secret for the authenticator app: {secret}")
    print(f"Or as a link: {totp_uri(secret, username)}")


def cmd_user_add(args: argparse.Namespace) -> int:
    from tillit.counselor_console import accounts, audit
    from tillit.counselor_console.totp_crypto import load_sealer

    settings = _settings(args)
    if not (args.display_name or "").strip():  # before asking for a password
        print("tillit: --display-name is required: the name visitors see instead of the "
              'username, e.g. --display-name "Aster"', file=sys.stderr)
        return 2
    password = _read_password(args)
    languages = [x.strip() for x in (args.languages or "").split(",") if x.strip()]

    async def action(conn):  # noqa: ANN001, ANN202
        secret = await accounts.create(conn, args.name, password, args.role,
                                       display_name=args.display_name, languages=languages,
                                       sealer=load_sealer(settings))
        await audit.record(conn, "account.create", actor="cli", target=args.name, role=args.role)
        return secret

    try:
        secret = asyncio.run(_with_db(settings, action))
    except accounts.AccountError as exc:
        print(f"tillit: {exc}", file=sys.stderr)
        return 2
    _print_secret(args, args.name, args.role, secret)
    return 0


def cmd_user_disable(args: argparse.Namespace, disabled: bool = True) -> int:
    from tillit.counselor_console import accounts, audit

    settings = _settings(args)

    async def action(conn):  # noqa: ANN001, ANN202
        await accounts.set_disabled(conn, args.name, disabled)
        await audit.record(conn, "account.disable" if disabled else "account.enable",
                           actor="cli", target=args.name)

    try:
        asyncio.run(_with_db(settings, action))
    except accounts.AccountError as exc:
        print(f"tillit: {exc}", file=sys.stderr)
        return 2
    print(f"Account {args.name} is {'disabled' if disabled else 'enabled'}.")
    return 0


def cmd_user_reset(args: argparse.Namespace) -> int:
    from tillit.counselor_console import accounts, audit
    from tillit.counselor_console.totp_crypto import load_sealer

    settings = _settings(args)
    password = _read_password(args)

    async def action(conn):  # noqa: ANN001, ANN202
        secret = await accounts.reset(conn, args.name, password, sealer=load_sealer(settings))
        account = await accounts.get(conn, args.name)
        await audit.record(conn, "account.reset", actor="cli", target=args.name)
        return secret, account.role if account else ""

    try:
        secret, role = asyncio.run(_with_db(settings, action))
    except accounts.AccountError as exc:
        print(f"tillit: {exc}", file=sys.stderr)
        return 2
    _print_secret(args, args.name, role, secret)
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from tillit.counselor_console import accounts

    settings = _settings(args)
    rows = asyncio.run(_with_db(settings, accounts.list_all))
    for acc in rows:
        state = "disabled" if acc.disabled else "active"
        print(f"{acc.username}\t{acc.display_name or '(no display name)'}\t{acc.role}\t{state}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete notes past `retention.notes_days`, dead sessions and audit entries past
    `retention.audit_days` now; print the counts."""
    from tillit.counselor_console.purge import run_purge

    settings = _settings(args)

    async def action(conn):  # noqa: ANN001, ANN202
        return await run_purge(conn, settings.retention.notes_days,
                               settings.console.session_idle_s, actor="cli",
                               audit_days=settings.retention.audit_days,
                               mailbox_idle_days=settings.continuity.idle_days)

    counts = asyncio.run(_with_db(settings, action))
    print(f"Purged {counts['notes']} notes and {counts['sessions']} sessions "
          f"and {counts.get('audit', 0)} audit entries "
          f"and {counts.get('mailboxes', 0)} idle mailboxes.")
    return 0


def cmd_stats_export(args: argparse.Namespace) -> int:
    """The supervisor's CSV for a period, with the same suppression as the page."""
    from tillit.counselor_console import stats
    from tillit.counselor_console.periods import PeriodError, parse_period
    from tillit.counselor_console.stats_routes import load_report

    settings = _settings(args)
    try:
        first, last = parse_period({"from": args.date_from or "", "to": args.date_to or ""})
    except PeriodError as exc:
        print(f"tillit: bad period: {exc}", file=sys.stderr)
        return 2

    async def action(db):  # noqa: ANN001, ANN202
        return await load_report(db, settings, first, last)

    text = stats.to_csv(asyncio.run(_with_db(settings, action)))
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        print(f"Wrote statistics {first} to {last} to {args.output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the durable database (server.database_url) to this code's schema."""
    from tillit.durable.engine import create_engine, shown
    from tillit.durable.migrate import SchemaTooNew, status, upgrade

    settings = _settings(args)
    url = _durable_url(settings)

    async def run() -> tuple[bool, str | None]:
        engine = create_engine(url)
        try:
            changed = await upgrade(engine)
            return changed, (await status(engine)).current
        finally:
            await engine.dispose()

    try:
        changed, current = asyncio.run(run())
    except SchemaTooNew as exc:
        print(f"tillit: {exc}", file=sys.stderr)
        return 2
    verb = "migrated to" if changed else "already at"
    print(f"{shown(url)}: {verb} schema revision {current}")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    """Connectivity and schema revision of the durable database; 0 only when it is
    reachable and at this code's head, 1 when reachable but not at head, 2 unreachable."""
    from tillit.durable.engine import create_engine, shown
    from tillit.durable.migrate import status

    settings = _settings(args)
    url = _durable_url(settings)

    async def run():  # noqa: ANN202
        engine = create_engine(url)
        try:
            return await status(engine)
        finally:
            await engine.dispose()

    print(f"database: {shown(url)}")
    try:
        found = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the answer
        print(f"reachable: no ({type(exc).__name__}: {exc})")
        return 2
    print("reachable: yes")
    print(f"schema revision: {found.current or '(none: run tillit db upgrade)'}")
    print(f"head: {found.head}")
    return 0 if found.at_head else 1


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """A new key as a keyring line, printed or written to a new file (0600): the operator
    copies the same file to every machine (docs/operations.md, "Keys")."""
    from tillit.counselor_console.key_files import new_key_line

    line = new_key_line()
    if not args.output:
        print(line)
        return 0
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"tillit: {args.output} exists: to rotate, put a new line first in it "
              "(see docs/operations.md, \"Keys\")", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(line + "\n")
    print(f"Wrote a new key to {args.output}.", file=sys.stderr)
    return 0


def cmd_keys_rotate_totp(args: argparse.Namespace) -> int:
    """Seal every TOTP secret again under the first key of console.totp_key_file."""
    from tillit.counselor_console.totp_crypto import load_sealer, reseal_all

    settings = _settings(args)

    async def action(db):  # noqa: ANN001, ANN202
        return await reseal_all(db, load_sealer(settings))

    count = asyncio.run(_with_db(settings, action))
    print(f"Re-sealed {count} TOTP secrets under the first key of the keyring; the other "
          "keys may now leave it.")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    """Print the settings table (docs/operations.md, "Settings", is this output)."""
    from tillit.chat_server.settings import shipped_defaults
    from tillit.chat_server.settings_table import markdown_table

    sys.stdout.write(markdown_table(shipped_defaults()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tillit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the chat server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    _add_common(serve)
    serve.set_defaults(func=cmd_serve)

    user_sub = _group(sub, "user", "manage staff accounts")
    add = user_sub.add_parser("add", help="create an account; prints its TOTP secret")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["counselor", "supervisor", "admin"])
    add.add_argument("--display-name", metavar="NAME",
                     help="required: the name visitors see, never the username")
    add.add_argument("--languages", help="languages the counselor chats in, e.g. sv,ar")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(add)
    add.set_defaults(func=cmd_user_add)

    _command(user_sub, "disable", "disable an account and end its sessions", cmd_user_disable,
             "name")
    _command(user_sub, "enable", "enable a disabled account",
             lambda a: cmd_user_disable(a, disabled=False), "name")

    reset = user_sub.add_parser("reset", help="new password and new TOTP secret")
    reset.add_argument("name")
    reset.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(reset)
    reset.set_defaults(func=cmd_user_reset)

    _command(sub, "purge", "delete notes, sessions and audit entries past their retention, now",
             cmd_purge)

    stats_sub = _group(sub, "stats", "anonymous statistics")
    export = stats_sub.add_parser(
        "export", help="write the statistics of a period as CSV (dimension,value,count)")
    export.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                        help="first day (default: 29 days before --to)")
    export.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD",
                        help="last day (default: today)")
    export.add_argument("--output", help="file to write (default: standard output)")
    _add_common(export)
    export.set_defaults(func=cmd_stats_export)

    _command(user_sub, "list", "list accounts", cmd_user_list)

    db_sub = _group(sub, "db", "the durable database (server.database_url)")
    _command(db_sub, "upgrade", "migrate the schema to this version's", cmd_db_upgrade)
    _command(db_sub, "check", "connectivity and schema revision; exit 0 only when at head",
             cmd_db_check)

    keys_sub = _group(sub, "keys", "the notes' and TOTP secrets' key files")
    generate = keys_sub.add_parser(
        "generate", help="print a new key (one keyring line), or write it to a new file")
    generate.add_argument("--output", help="a new file to write (mode 0600)")
    generate.set_defaults(func=cmd_keys_generate)
    _command(keys_sub, "rotate-totp", "re-seal every TOTP secret under the keyring's first key",
             cmd_keys_rotate_totp)

    table = sub.add_parser(
        "settings", help="print every setting: type, default, unit, help (Markdown)")
    table.set_defaults(func=cmd_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:  # refused at start-up, with what to change
        print(f"tillit: {exc}", file=sys.stderr)
        return 2
