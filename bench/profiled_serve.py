"""`qm serve` (one process) under cProfile, writing the profile when it is stopped with SIGTERM.

`python -m cProfile -m quartermaster serve` writes nothing: uvicorn re-raises SIGTERM after its
graceful shutdown, which kills the process before cProfile can dump. Here the handler that
uvicorn restores and re-raises into is a no-op, so `uvicorn.run` returns and the profile is saved.

Usage: python bench/profiled_serve.py --port 8000 --out qm.prof  (QM_* settings from the env)
"""

from __future__ import annotations

import argparse
import cProfile
import signal

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: None)
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


if __name__ == "__main__":
    main()
