"""Failed sign-ins are counted per (name, client) for an exponential back-off, instead of locking the account.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_backoff",
        sa.Column("name_key", sa.String(64), primary_key=True),
        sa.Column("client_key", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
    )
    # Accounts locked by the old rule are unlocked: nobody locks an account any more.
    op.execute(sa.text("UPDATE accounts SET failed_logins = 0, locked_until = NULL"))


def downgrade() -> None:
    op.drop_table("sign_in_backoff")
