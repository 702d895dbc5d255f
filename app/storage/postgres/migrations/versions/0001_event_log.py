"""The event log: events partitioned by day of append, their ids, consumer groups.

Idempotency needs one constraint over every event id ever stored, but a unique constraint on a
partitioned table must include the partition key, so it could only say "unique per day". The
ids therefore live in their own narrow table ``event_ids`` (id and day, primary key on the id):
one index probe per id dedupes across all partitions, and retention deletes the ids of the days
it drops. Partitioning by hash of the id instead would keep the constraint but lose retention
by ``DROP TABLE`` of whole days, which is the point of partitioning here.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE SEQUENCE event_positions;
        CREATE TABLE events (
            position bigint NOT NULL,
            appended_at timestamptz NOT NULL DEFAULT now(),
            event_id text NOT NULL,
            user_id text NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (position, appended_at)
        ) PARTITION BY RANGE (appended_at);
        CREATE INDEX events_by_user ON events (user_id);
        CREATE TABLE event_ids (
            event_id text PRIMARY KEY,
            appended_at timestamptz NOT NULL
        );
        CREATE INDEX event_ids_by_time ON event_ids (appended_at);
        CREATE TABLE event_consumer_groups (
            group_name text PRIMARY KEY,
            delivered_up_to bigint NOT NULL
        );
        CREATE TABLE event_pending (
            group_name text NOT NULL,
            position bigint NOT NULL,
            consumer text NOT NULL,
            delivered_at timestamptz NOT NULL,
            PRIMARY KEY (group_name, position)
        );
        CREATE INDEX event_pending_by_consumer ON event_pending (group_name, consumer, position);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE event_pending, event_consumer_groups, event_ids, events; "
        "DROP SEQUENCE event_positions"
    )
