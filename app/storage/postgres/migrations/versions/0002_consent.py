"""Consent: each user's current choices (by pseudonym) and every change they made.

Revision ID: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE consent (
            key text PRIMARY KEY,
            choices jsonb NOT NULL,
            updated_at double precision NOT NULL
        );
        CREATE TABLE consent_history (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key text NOT NULL,
            changes jsonb NOT NULL,
            at double precision NOT NULL
        );
        CREATE INDEX consent_history_by_key ON consent_history (key, id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE consent_history, consent")
