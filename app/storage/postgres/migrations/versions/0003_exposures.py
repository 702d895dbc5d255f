"""Experiment exposures: one row per recommendation served in an experiment, the pairs already
counted, per-variant counters and each variant's users (for the exact distinct-user count).

Revision ID: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE exposures (
            recommendation_id text PRIMARY KEY,
            experiment_id text NOT NULL,
            variant text NOT NULL,
            user_key text NOT NULL,
            positions jsonb NOT NULL,
            served_at text NOT NULL,
            expires_at double precision NOT NULL
        );
        CREATE INDEX exposures_by_expiry ON exposures (expires_at);
        CREATE INDEX exposures_by_user ON exposures (user_key);
        CREATE TABLE exposure_counted (
            recommendation_id text NOT NULL,
            item_id text NOT NULL,
            counter text NOT NULL,
            PRIMARY KEY (recommendation_id, item_id, counter)
        );
        CREATE TABLE exposure_counts (
            experiment_id text NOT NULL,
            variant text NOT NULL,
            exposures bigint NOT NULL DEFAULT 0,
            impressions bigint NOT NULL DEFAULT 0,
            clicks bigint NOT NULL DEFAULT 0,
            conversions bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (experiment_id, variant)
        );
        CREATE TABLE exposure_users (
            experiment_id text NOT NULL,
            variant text NOT NULL,
            user_key text NOT NULL,
            PRIMARY KEY (experiment_id, variant, user_key)
        );
        CREATE INDEX exposure_users_by_user ON exposure_users (user_key);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE exposure_users, exposure_counts, exposure_counted, exposures")
