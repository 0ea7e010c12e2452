"""The audit chain becomes keyed (HMAC-SHA256 with the audit key kept outside the database).

Nothing in the schema changes: the hash column holds 64 hex digits either way. A log that already has
records keeps them as written (their unkeyed SHA-256 chain is still checked) and gets one switch record,
``audit-key`` by ``luciddx``/``system``, hashed with the key; every record after it is keyed. Its HMAC covers
the last unkeyed hash, so the old records can no longer be rewritten without the key. Re-chaining the old
records instead would have vouched for whatever was already wrong with them.

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from core.access import audit

    db = op.get_bind()
    if db.execute(sa.select(sa.func.count()).select_from(audit.table)).scalar():
        fields = {
            "time": audit.time_text(datetime.now(UTC)),
            "user": audit.SYSTEM_USER,
            "role": audit.SYSTEM_ROLE,
            "action": audit.KEY_ACTION,
            "model": None,
            "input_sha256": None,
            "outcome": "ok",
        }
        audit.append(db, fields, audit.chain_key())


def downgrade() -> None:
    # Records are never deleted; a downgraded LucidDx would report the log broken at the switch record.
    pass
