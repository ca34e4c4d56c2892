"""The admin page: create, disable, enable and reset staff accounts; read the audit log.

Plain HTML forms (no script needed), each POST carrying the session's CSRF token and
checked against the `admin` role on the server. A new or reset account's password and
TOTP secret are shown once, on a `no-store` page, and never stored in clear.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tillit.chat_server.app_keys import MAILBOXES, SETTINGS
from tillit.counselor_console import accounts, audit
from tillit.counselor_console.app_keys import DURABLE_DB
from tillit.counselor_console.guards import check_csrf, require_role
from tillit.counselor_console.routes import end_sockets
from tillit.counselor_console.sessions import Session
from tillit.counselor_console.staff_pages import staff_page
from tillit.counselor_console.totp_crypto import TOTP_SEALER
from tillit.safety import mailbox_shapes
from tillit.safety.errors import ProtocolError

ADMIN = ("admin",)
MAX_FORM_BYTES = 4096


def _page(request: web.Request, name: str, session: Session, **context: Any) -> web.Response:
    return staff_page(request, name, session, roles=accounts.ROLES, **context)


async def admin_page(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN)
    db = request.app[DURABLE_DB]
    accounts_list = await accounts.list_all(db)
    return _page(
        request, "admin.html", session,
        accounts_list=accounts_list,
        unnamed=[a.username for a in accounts_list if not a.display_name],
        audit_entries=[
            {**e, "when": datetime.fromtimestamp(e["ts"], UTC).strftime("%Y-%m-%d %H:%M")}
            for e in await audit.entries(db, limit=200)
        ],
        languages=request.app[SETTINGS].vocab_ids("languages"),
        message=request.query.get("done", ""),
    )


async def _form(request: web.Request, session: Session) -> dict[str, str]:
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM_BYTES,
                                            actual_size=request.content_length or 0)
    data = await request.post()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    check_csrf(request, session, form.get("csrf_token"))
    return form


def _new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, about 120 bits


async def create_account(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN)
    form = await _form(request, session)
    allowed = set(request.app[SETTINGS].vocab_ids("languages"))
    languages = [x.strip() for x in form.get("languages", "").split(",") if x.strip()]
    if any(lang not in allowed for lang in languages):
        raise web.HTTPBadRequest(text="unknown language")
    username, role = form.get("username", "").strip(), form.get("role", "")
    password = _new_password()
    db = request.app[DURABLE_DB]
    try:
        secret = await accounts.create(db, username, password, role,
                                       display_name=form.get("display_name", ""),
                                       languages=languages, sealer=request.app[TOTP_SEALER])
    except accounts.AccountError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    await audit.record(db, "account.create", actor=session.username, target=username, role=role)
    return _secret_page(request, session, username, role, password, secret)


def _secret_page(request: web.Request, session: Session, username: str, role: str,
                 password: str, secret: str) -> web.Response:
    return _page(request, "admin_secret.html", session, account_name=username, account_role=role,
                 password=password, totp_secret=secret,
                 totp_uri=accounts.totp_uri(secret, username))


async def change_account(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN)
    await _form(request, session)  # the CSRF check
    username, action = request.match_info["username"], request.match_info["action"]
    db = request.app[DURABLE_DB]
    if username == session.username and action != "enable":
        raise web.HTTPBadRequest(text="use another admin account to change your own")
    try:
        if action in ("disable", "enable"):
            await accounts.set_disabled(db, username, action == "disable")
            if action == "disable":
                await end_sockets(request, username=username)
        elif action == "reset":
            password = _new_password()
            secret = await accounts.reset(db, username, password,
                                          sealer=request.app[TOTP_SEALER])
            await end_sockets(request, username=username)
            account = await accounts.get(db, username)
            await audit.record(db, "account.reset", actor=session.username, target=username)
            return _secret_page(request, session, username, account.role if account else "",
                                password, secret)
        else:
            raise web.HTTPNotFound()
    except accounts.AccountError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    await audit.record(db, f"account.{action}", actor=session.username, target=username)
    raise web.HTTPSeeOther(f"/console/admin?done={action}")


async def change_display_name(request: web.Request) -> web.Response:
    """The name visitors see; accounts from before display names get theirs here."""
    session = await require_role(request, ADMIN)
    form = await _form(request, session)
    username = request.match_info["username"]
    db = request.app[DURABLE_DB]
    try:
        await accounts.set_display_name(db, username, form.get("display_name", ""))
    except accounts.AccountError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    await audit.record(db, "account.display_name", actor=session.username, target=username)
    raise web.HTTPSeeOther("/console/admin?done=display_name")


async def set_team_key(request: web.Request) -> web.Response:
    """The team recovery key's public half (docs/protocol.md E12.5): the server computes
    its kid; the private half stays in the admin's offline file."""
    session = await require_role(request, ADMIN)
    form = await _form(request, session)
    try:
        pubkey = mailbox_shapes.public_key("pubkey", form.get("pubkey", "").strip())
    except ProtocolError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
    await request.app[MAILBOXES].store.set_team(mailbox_shapes.key_id(pubkey), pubkey)
    await audit.record(request.app[DURABLE_DB], "mailbox.team_key", actor=session.username)
    raise web.HTTPSeeOther("/console/admin?done=team_key")


def setup_admin_routes(app: web.Application) -> None:
    app.router.add_post("/console/admin/team-key", set_team_key)
    app.router.add_post("/console/admin/accounts/{username}/display-name", change_display_name)
    app.router.add_get("/console/admin", admin_page)
    app.router.add_post("/console/admin/accounts", create_account)
    app.router.add_post(r"/console/admin/accounts/{username}/{action:disable|enable|reset}",
                        change_account)
