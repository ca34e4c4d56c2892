"""An idempotency key on audit rows and statistics facts, for the outbox.

With several machines, audit entries and facts go through a Redis list and are written
by whichever process drains it, at least once (tillit/durable/outbox.py). Each carries a
random key, unique here, so that a write retried after a crash is not counted twice.
The key is random, per row: it joins a fact with nothing. NULL (rows written directly,
on one machine) is never a conflict.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("audit", "stats_facts")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("outbox_key", sa.Text))
        op.create_index(f"{table}_outbox_key", table, ["outbox_key"], unique=True)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"{table}_outbox_key", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("outbox_key")
