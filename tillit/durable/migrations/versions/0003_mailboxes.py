"""Mailboxes and return codes (docs/protocol.md E12.11): mailboxes, their sealed
messages, read marks and case notes, counselors' key records and the team key; for the
statistics, mailbox counts per day and a `returning_contact` flag on chat facts.

Written out here rather than imported from schema.py, so that this revision keeps
doing what it did when schema.py changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("pubkey", sa.Text, nullable=False),
        sa.Column("wrapped_iv", sa.Text, nullable=False),
        sa.Column("wrapped_ct", sa.Text, nullable=False),
        sa.Column("assigned", sa.Text),
        sa.Column("created_day", sa.Text, nullable=False),
        sa.Column("last_active_day", sa.Text, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("mailboxes_assigned", "mailboxes", ["assigned"])
    op.create_index("mailboxes_last_active", "mailboxes", ["last_active_day"])
    op.create_table(
        "mailbox_messages",
        sa.Column("mailbox_id", sa.Text, sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("msg_id", sa.Text, nullable=False),
        sa.Column("dir", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ts", Int64, nullable=False),
        sa.Column("iv", sa.Text, nullable=False),
        sa.Column("ct", sa.Text, nullable=False),
        sa.Column("entries", sa.Text, nullable=False),
    )
    op.create_index("mailbox_messages_msg_id", "mailbox_messages", ["mailbox_id", "msg_id"],
                    unique=True)
    op.create_table(
        "mailbox_reads",
        sa.Column("mailbox_id", sa.Text, sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("read_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "mailbox_notes",
        sa.Column("id", Int64, primary_key=True, autoincrement=True),
        sa.Column("mailbox_id", sa.Text, sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ct", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("mailbox_notes_mailbox", "mailbox_notes", ["mailbox_id", "author"])
    op.create_table(
        "counselor_keys",
        sa.Column("username", sa.Text,
                  sa.ForeignKey("accounts.username", ondelete="CASCADE"), primary_key=True),
        sa.Column("kid", sa.Text, nullable=False),
        sa.Column("pubkey", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_table(
        "team_key",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kid", sa.Text, nullable=False),
        sa.Column("pubkey", sa.Text, nullable=False),
    )
    op.create_table(
        "mailbox_counts",
        sa.Column("day", sa.Text, primary_key=True),
        sa.Column("created", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("v2c", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("c2v", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.add_column("stats_facts", sa.Column("returning_contact", sa.Integer, nullable=False,
                                           server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("stats_facts") as batch:
        batch.drop_column("returning_contact")
    for table in ("mailbox_counts", "team_key", "counselor_keys", "mailbox_notes", "mailbox_reads",
                  "mailbox_messages", "mailboxes"):
        op.drop_table(table)
