"""The webhook outbox (waiting deliveries, with their due time or lease end) and its dead
letters.

Revision ID: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhook_outbox (
            delivery_id text PRIMARY KEY,
            endpoint text NOT NULL,
            kind text NOT NULL,
            body bytea NOT NULL,
            created_at double precision NOT NULL,
            attempts integer NOT NULL,
            last_error text,
            user_key text,
            due_at double precision NOT NULL,
            owner text
        );
        CREATE INDEX webhook_outbox_by_due ON webhook_outbox (due_at);
        CREATE INDEX webhook_outbox_by_age ON webhook_outbox (created_at);
        CREATE INDEX webhook_outbox_by_user ON webhook_outbox (user_key);
        CREATE TABLE webhook_dead_letters (
            delivery_id text PRIMARY KEY,
            endpoint text NOT NULL,
            kind text NOT NULL,
            body bytea NOT NULL,
            created_at double precision NOT NULL,
            attempts integer NOT NULL,
            last_error text,
            user_key text,
            dead_at double precision NOT NULL
        );
        CREATE INDEX webhook_dead_letters_by_user ON webhook_dead_letters (user_key);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE webhook_dead_letters, webhook_outbox")
