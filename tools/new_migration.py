"""Generate the next Alembic migration by comparing the models with a freshly migrated SQLite.

Usage: .venv/bin/python tools/new_migration.py 0003 "what the change is for"
Read and tidy the generated file; it must run on SQLite and PostgreSQL (the tests run both).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from quartermaster.store.migrate import alembic_config, upgrade


def main(revision: str, message: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'current.db'}"
        upgrade(url)
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=revision)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
