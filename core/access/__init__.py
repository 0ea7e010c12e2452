"""Accounts, roles, the audit trail and DICOM de-identification (no Streamlit, no imaging here).

accounts     add / list / disable / set-role / authenticate (Argon2, lockout), idle sessions
apikeys      keys that belong to accounts, stored hashed, shown once
audit        the append-only, hash-chained audit log and its verify()
deidentify   PS3.15 Annex E Basic Profile via dicom-anonymizer
roles        clinician < researcher < admin; the action -> least-role table; require()
store        the SQLAlchemy engine (SQLite or PostgreSQL) and its Alembic migrations
settings     LUCIDDX_DB_URL and the sign-in rules
"""

from core.access.roles import PERMISSIONS, ROLES, allowed, require

__all__ = ["PERMISSIONS", "ROLES", "allowed", "require"]
