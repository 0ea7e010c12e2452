"""Browser sessions kept by the server, so a signed-in person survives a reload, a bookmark or a second tab.

Only SHA-256 digests of the cookie's token and of the one-time hand-over code are stored.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=True, unique=True),
        sa.Column("handoff_sha256", sa.String(64), nullable=True, unique=True),
        sa.Column("handoff_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
    )
    op.create_index("ix_browser_sessions_account", "browser_sessions", ["account"])


def downgrade() -> None:
    op.drop_index("ix_browser_sessions_account", "browser_sessions")
    op.drop_table("browser_sessions")
