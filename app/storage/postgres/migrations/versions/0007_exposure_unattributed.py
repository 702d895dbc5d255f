"""Per-variant counts of feedback events not attributed to their exposure, by reason.

Revision ID: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE exposure_unattributed (
            experiment_id text NOT NULL,
            variant text NOT NULL,
            reason text NOT NULL,
            events bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (experiment_id, variant, reason)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE exposure_unattributed")
