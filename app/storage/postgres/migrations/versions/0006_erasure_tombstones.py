"""Erasure tombstones: the pseudonyms of erased users, which every later build drops.

Revision ID: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE erasure_tombstones ("
        "pseudonym text PRIMARY KEY, erased_at double precision NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE erasure_tombstones")
