"""Item availability overrides and their change counter (one row, bumped by every write).

Revision ID: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE availability_overrides (
            item_id text PRIMARY KEY,
            hidden boolean,
            in_stock boolean,
            generation bigint NOT NULL
        );
        CREATE TABLE availability_generation (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            value bigint NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE availability_generation, availability_overrides")
