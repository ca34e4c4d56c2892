"""The durable tables as of the first release on Alembic; adopts a pre-Alembic file.

An empty database gets every table. A SQLite data folder from before Alembic (tables
made by `CREATE TABLE IF NOT EXISTS` at start-up) keeps its rows and gets what those
start-ups did on the fly: `stats_facts.sector`/`contact` added, the old table
`feedback` dropped, and `accounts.display_name` made nullable (accounts given their
username as display name, which visitors then read, get NULL; the admin page asks for a
real one). SQLite cannot drop a NOT NULL, so that table is rebuilt
(sqlite.org/lang_altertable.html, "other kinds of table schema changes") with foreign
keys off (tillit/durable/migrate.py turns them off around every migration) so that
dropping the old table does not cascade into sessions.

The tables are written out here, not imported from schema.py, so that this revision
keeps doing what it did when schema.py changes.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACCOUNT_COLUMNS = ("username, display_name, role, password_hash, totp_secret, totp_last_step, "
                   "languages, disabled, created_day")


def _accounts(md: sa.MetaData, name: str = "accounts") -> sa.Table:
    return sa.Table(
        name, md,
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.Text, nullable=False),
        sa.Column("totp_last_step", Int64, nullable=False, server_default=sa.text("0")),
        sa.Column("languages", sa.Text, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("disabled", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_day", sa.Text, nullable=False),
        sa.CheckConstraint("role IN ('counselor', 'supervisor', 'admin')",
                           name="accounts_role"),
    )


def _tables(md: sa.MetaData) -> list[sa.Table]:
    """In creation order (sessions refers to accounts)."""
    return [
        _accounts(md),
        sa.Table(
            "sessions", md,
            sa.Column("token_hash", sa.Text, primary_key=True),
            sa.Column("username", sa.Text,
                      sa.ForeignKey("accounts.username", ondelete="CASCADE"), nullable=False),
            sa.Column("csrf_token", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("last_seen", sa.Float, nullable=False),
        ),
        sa.Table(
            "console_sockets", md,
            sa.Column("sid", sa.Text, primary_key=True),
            sa.Column("token_hash", sa.Text, nullable=False),
            sa.Column("username", sa.Text, nullable=False),
        ),
        sa.Table(
            "audit", md,
            sa.Column("id", Int64, primary_key=True, autoincrement=True),
            sa.Column("ts", Int64, nullable=False),
            sa.Column("actor", sa.Text),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("target", sa.Text),
            sa.Column("detail", sa.Text),
            sa.Index("audit_ts", "ts"),
            sqlite_autoincrement=True,
        ),
        sa.Table(
            "stats_facts", md,
            sa.Column("id", Int64, primary_key=True, autoincrement=True),
            sa.Column("day", sa.Text, nullable=False),
            *(sa.Column(name, sa.Text) for name in
              ("lang", "age_group", "gender", "role", "sector", "contact")),
            sa.Column("child", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("danger_now", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("topics", sa.Text, nullable=False, server_default=sa.text("'[]'")),
            sa.Column("indicators", sa.Text, nullable=False, server_default=sa.text("'[]'")),
            sa.Column("decision", sa.Text),
            sa.Column("decision_to", sa.Text),
            sa.Column("referrals", sa.Text, nullable=False, server_default=sa.text("'[]'")),
            sa.Column("outcome", sa.Text),
            sa.Column("answered", sa.Integer, nullable=False, server_default=sa.text("1")),
            sa.Column("dropped", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("wait_bucket", sa.Text),
            sa.Column("duration_bucket", sa.Text),
            sa.Column("wait_s", sa.Integer),
            sa.Column("helped", sa.Text),
            sa.Column("score", sa.Integer),
            sa.Index("stats_facts_day", "day"),
            sqlite_autoincrement=True,
        ),
        sa.Table(
            "notes", md,
            sa.Column("id", Int64, primary_key=True, autoincrement=True),
            sa.Column("author", sa.Text, nullable=False),
            sa.Column("chat_ref", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("nonce", sa.LargeBinary, nullable=False),
            sa.Column("ct", sa.LargeBinary, nullable=False),
            sa.Index("notes_author", "author", "chat_ref"),
            sa.Index("notes_created", "created_at"),
            sqlite_autoincrement=True,
        ),
    ]


# Columns that pre-Alembic start-ups added to an older stats_facts table.
ADDED_FACT_COLUMNS = ("sector", "contact")


def upgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    if bind.dialect.name == "sqlite" and "accounts" in have and _display_name_required(bind):
        _rebuild_accounts(bind)
    for table in _tables(sa.MetaData()):
        if table.name not in have:
            table.create(bind)
    if "stats_facts" in have:
        columns = {c["name"] for c in sa.inspect(bind).get_columns("stats_facts")}
        for name in ADDED_FACT_COLUMNS:
            if name not in columns:
                op.add_column("stats_facts", sa.Column(name, sa.Text))
    if "feedback" in have:  # feedback used to have a table; it lives in stats_facts now
        op.drop_table("feedback")


def _display_name_required(bind: sa.Connection) -> bool:
    rows = bind.exec_driver_sql("PRAGMA table_info(accounts)").mappings()
    return any(r["name"] == "display_name" and r["notnull"] for r in rows)


def _rebuild_accounts(bind: sa.Connection) -> None:
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("rebuilding accounts with foreign keys on would empty sessions")
    _accounts(sa.MetaData(), "accounts_new").create(bind)
    bind.exec_driver_sql(f"INSERT INTO accounts_new ({ACCOUNT_COLUMNS}) "
                         f"SELECT {ACCOUNT_COLUMNS} FROM accounts")
    bind.exec_driver_sql(
        "UPDATE accounts_new SET display_name = NULL WHERE display_name = username")
    bind.exec_driver_sql("DROP TABLE accounts")
    bind.exec_driver_sql("ALTER TABLE accounts_new RENAME TO accounts")
    if bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
        raise RuntimeError("accounts migration broke a foreign key")


def downgrade() -> None:
    raise NotImplementedError("the first revision has nothing to go back to")
