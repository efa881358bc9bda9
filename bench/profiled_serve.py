"""`qm serve` (one process) under cProfile, counting its database round trips, writing both when
it is stopped with SIGTERM.

`python -m cProfile -m quartermaster serve` writes nothing: uvicorn re-raises SIGTERM after its
graceful shutdown, which kills the process before cProfile can dump. Here the handler that
uvicorn restores and re-raises into is a no-op, so `uvicorn.run` returns and the files are saved.

Round trips are counted with SQLAlchemy's events: every statement, BEGIN, COMMIT, ROLLBACK, and
the pool's pre-ping on each checkout. Written as JSON {"what": count} to `<out>.sql.json`.

Usage: python bench/profiled_serve.py --port 8000 --out qm.prof  (QM_* settings from the env)
"""

from __future__ import annotations

import argparse
import cProfile
import json
import signal
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

ROUND_TRIPS: Counter[str] = Counter()


def _statement(*args: Any) -> None:
    statement = " ".join(str(args[2]).split())
    ROUND_TRIPS[statement[:120]] += 1


def _count(what: str, *_: Any) -> None:
    ROUND_TRIPS[what] += 1


def count_round_trips() -> None:
    event.listen(Engine, "before_cursor_execute", _statement)
    for name in ("begin", "commit", "rollback"):
        event.listen(Engine, name, partial(_count, name.upper()))
    event.listen(Pool, "checkout", partial(_count, "pre-ping (SELECT 1)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: None)
    count_round_trips()
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(
            "quartermaster.app:create_app",
            factory=True,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
        )
    finally:
        profiler.disable()
        profiler.dump_stats(args.out)
        trips = dict(ROUND_TRIPS.most_common())
        args.out.with_suffix(".sql.json").write_text(json.dumps(trips, indent=1))


if __name__ == "__main__":
    main()
