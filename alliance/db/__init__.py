"""The gateway's database: typed SQLAlchemy models, sessions, Alembic migrations."""
