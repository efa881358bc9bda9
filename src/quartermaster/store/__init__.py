"""Storage: SQLAlchemy models, engine set-up, the unit of work, and Alembic migrations."""
