"""Every durable table, once, for SQLite and PostgreSQL alike.

Types follow the SQLite files written before this schema existed (flags as INTEGER 0/1,
lists as JSON text, times as REAL seconds), so that an existing data folder is adopted
in place (migrations/versions/0001_initial.py). Ids and Unix seconds are 64-bit on
PostgreSQL; on SQLite they stay `INTEGER PRIMARY KEY`, the rowid, as before.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)

Int64 = BigInteger().with_variant(Integer(), "sqlite")
ROLES = ("counselor", "supervisor", "admin")

metadata = MetaData()

# display_name is NULL only for accounts made before every account had to have one: the
# admin page asks for it, and visitors read "your counselor" meanwhile.
accounts = Table(
    "accounts", metadata,
    Column("username", Text, primary_key=True),
    Column("display_name", Text),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", Text, nullable=False),
    Column("totp_last_step", Int64, nullable=False, server_default=text("0")),
    Column("languages", Text, nullable=False, server_default=text("'[]'")),
    Column("disabled", Integer, nullable=False, server_default=text("0")),
    Column("created_day", Text, nullable=False),
    CheckConstraint("role IN ('counselor', 'supervisor', 'admin')", name="accounts_role"),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", Text, primary_key=True),
    Column("username", Text, ForeignKey("accounts.username", ondelete="CASCADE"),
           nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

# Which process-independent Socket.IO sid belongs to which session, so that a logout
# handled by one process can disconnect the console's socket on another (through the
# Socket.IO manager). Rows go with the socket, or with the session.
console_sockets = Table(
    "console_sockets", metadata,
    Column("sid", Text, primary_key=True),
    Column("token_hash", Text, nullable=False),
    Column("username", Text, nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("ts", Int64, nullable=False),
    Column("actor", Text),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("detail", Text),
    # Random, per row: the outbox's idempotency key (tillit/durable/outbox.py), or NULL.
    Column("outbox_key", Text),
    Index("audit_ts", "ts"),
    Index("audit_outbox_key", "outbox_key", unique=True),
    sqlite_autoincrement=True,
)

# One row per chat, categories only (counselor_console/stats_facts.py).
stats_facts = Table(
    "stats_facts", metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("day", Text, nullable=False),
    Column("lang", Text),
    Column("age_group", Text),
    Column("gender", Text),
    Column("role", Text),
    Column("sector", Text),
    Column("contact", Text),
    Column("child", Integer, nullable=False, server_default=text("0")),
    Column("danger_now", Integer, nullable=False, server_default=text("0")),
    Column("topics", Text, nullable=False, server_default=text("'[]'")),
    Column("indicators", Text, nullable=False, server_default=text("'[]'")),
    Column("decision", Text),
    Column("decision_to", Text),
    Column("referrals", Text, nullable=False, server_default=text("'[]'")),
    Column("outcome", Text),
    Column("answered", Integer, nullable=False, server_default=text("1")),
    Column("dropped", Integer, nullable=False, server_default=text("0")),
    Column("wait_bucket", Text),
    Column("duration_bucket", Text),
    Column("wait_s", Integer),
    Column("helped", Text),
    Column("score", Integer),
    # A returning contact (chat:start with a mailbox); which mailbox is never recorded.
    Column("returning_contact", Integer, nullable=False, server_default=text("0")),
    Column("outbox_key", Text),  # as audit.outbox_key: random, joins with nothing
    Index("stats_facts_day", "day"),
    Index("stats_facts_outbox_key", "outbox_key", unique=True),
    sqlite_autoincrement=True,
)

# Counselors' notes, sealed (counselor_console/notes.py); author, chat and time in clear
# so that the purge finds them and only the author is handed them.
notes = Table(
    "notes", metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("author", Text, nullable=False),
    Column("chat_ref", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ct", LargeBinary, nullable=False),
    Index("notes_author", "author", "chat_ref"),
    Index("notes_created", "created_at"),
    sqlite_autoincrement=True,
)

# Mailboxes (docs/protocol.md E12.11): only ciphertext and what finding, ordering and
# expiring them needs. `id` is base64url(SHA-256(locator)); the locator and the code are
# never stored. Days are "YYYY-MM-DD" (UTC), message times Unix seconds to the minute.
mailboxes = Table(
    "mailboxes", metadata,
    Column("id", Text, primary_key=True),
    Column("pubkey", Text, nullable=False),
    Column("wrapped_iv", Text, nullable=False),
    Column("wrapped_ct", Text, nullable=False),
    Column("assigned", Text),
    Column("created_day", Text, nullable=False),
    Column("last_active_day", Text, nullable=False),
    Column("messages", Integer, nullable=False, server_default=text("0")),
    Index("mailboxes_assigned", "assigned"),
    Index("mailboxes_last_active", "last_active_day"),
)

# One sealed message (E12.6); `entries`: the JSON list of its keys {kid, epk, iv, wk}.
mailbox_messages = Table(
    "mailbox_messages", metadata,
    Column("mailbox_id", Text, ForeignKey("mailboxes.id", ondelete="CASCADE"),
           primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("msg_id", Text, nullable=False),
    Column("dir", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("ts", Int64, nullable=False),
    Column("iv", Text, nullable=False),
    Column("ct", Text, nullable=False),
    Column("entries", Text, nullable=False),
    Index("mailbox_messages_msg_id", "mailbox_id", "msg_id", unique=True),
)

# How far each counselor has read a mailbox (for `unread` in mailbox:list).
mailbox_reads = Table(
    "mailbox_reads", metadata,
    Column("mailbox_id", Text, ForeignKey("mailboxes.id", ondelete="CASCADE"),
           primary_key=True),
    Column("username", Text, primary_key=True),
    Column("read_seq", Integer, nullable=False),
)

# Case notes linked to a mailbox, sealed like `notes` (counselor_console/notes_crypto.py);
# they live as long as the mailbox and go with it.
mailbox_notes = Table(
    "mailbox_notes", metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("mailbox_id", Text, ForeignKey("mailboxes.id", ondelete="CASCADE"),
           nullable=False),
    Column("author", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ct", LargeBinary, nullable=False),
    Index("mailbox_notes_mailbox", "mailbox_id", "author"),
    sqlite_autoincrement=True,
)

# A counselor's password-wrapped key record (E12.5), as the JSON the console sent.
counselor_keys = Table(
    "counselor_keys", metadata,
    Column("username", Text, ForeignKey("accounts.username", ondelete="CASCADE"),
           primary_key=True),
    Column("kid", Text, nullable=False),
    Column("pubkey", Text, nullable=False),
    Column("record", Text, nullable=False),
)

# The team recovery key's public half: one row (id 1) or none.
team_key = Table(
    "team_key", metadata,
    Column("id", Integer, primary_key=True),
    Column("kid", Text, nullable=False),
    Column("pubkey", Text, nullable=False),
)

# Mailbox statistics per day (issue 16, point 7): counts only, no mailbox id, so that no
# fact can be tied to a mailbox (counselor_console/stats.py suppresses small counts).
mailbox_counts = Table(
    "mailbox_counts", metadata,
    Column("day", Text, primary_key=True),
    Column("created", Integer, nullable=False, server_default=text("0")),
    Column("v2c", Integer, nullable=False, server_default=text("0")),
    Column("c2v", Integer, nullable=False, server_default=text("0")),
)
