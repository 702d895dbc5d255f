"""The guarded rollout's records: each challenger's rollout, each model change and its report.

Revision ID: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rollouts (
            rollout_id text PRIMARY KEY,
            challenger text NOT NULL,
            champion text NOT NULL,
            traffic_share double precision NOT NULL,
            started_at double precision NOT NULL,
            status text NOT NULL,
            decided_at double precision,
            decided_by text,
            reason text NOT NULL DEFAULT '',
            last_look text NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute(
        """
        CREATE TABLE model_changes (
            change_id text PRIMARY KEY,
            kind text NOT NULL,
            at double precision NOT NULL,
            from_version text,
            to_version text NOT NULL,
            reason text NOT NULL DEFAULT '',
            report text
        )
        """
    )
    op.execute("CREATE INDEX model_changes_at ON model_changes (at)")


def downgrade() -> None:
    op.execute("DROP TABLE model_changes")
    op.execute("DROP TABLE rollouts")
