"""Users' qualitative feedback: "not interested" and relevance ratings, by pseudonym.

Revision ID: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE feedback (
            id bigserial PRIMARY KEY,
            user_key text NOT NULL,
            kind text NOT NULL,
            target text NOT NULL,
            target_id text NOT NULL,
            rating smallint,
            at double precision NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX feedback_by_user ON feedback (user_key, kind)")


def downgrade() -> None:
    op.execute("DROP TABLE feedback")
