"""The soak's memory over time as a PNG for docs/performance.md: each server process's resident
memory (top) and the operations finished per second across all of them (bottom), so that a
step in memory can be read against what the load was doing then.

Usage: python bench/plot_soak.py /tmp/qm-soak/memory.csv docs/images/soak-memory.png
"""

from __future__ import annotations

import argparse
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the figure goes straight to a file

import matplotlib.pyplot as plt
import memory_series


def throughput(samples: list[memory_series.Sample]) -> tuple[list[float], list[float]]:
    """Operations per second between consecutive samples (read from process 0's rows, which
    carry the count across all servers)."""
    points = memory_series.by_process(samples)[0]
    minutes, rates = [], []
    for before, after in pairwise(points):
        seconds = after.elapsed_s - before.elapsed_s
        if seconds > 0:
            minutes.append(after.elapsed_s / 60)
            rates.append((after.operations - before.operations) / seconds)
    return minutes, rates


def plot(samples: list[memory_series.Sample], title: str, target: Path) -> None:
    figure, (memory, load) = plt.subplots(
        2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(3, 1), layout="constrained"
    )
    for process, series in sorted(memory_series.by_process(samples).items()):
        memory.plot(
            [s.elapsed_s / 60 for s in series],
            [s.rss_mib for s in series],
            label=f"qm serve {process} (pid {series[0].pid})",
            linewidth=1.2,
        )
    memory.set_ylabel("resident memory (MiB)")
    memory.set_ylim(bottom=0)
    memory.grid(alpha=0.3)
    memory.legend(loc="lower right", fontsize="small")
    memory.set_title(title)
    load.plot(*throughput(samples), color="grey", linewidth=0.8)
    load.set_ylabel("operations/s")
    load.set_xlabel("minutes into the soak")
    load.set_ylim(bottom=0)
    load.grid(alpha=0.3)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", type=Path, help="memory.csv written by soak.py")
    parser.add_argument("png", type=Path)
    parser.add_argument("--title", default="Soak: resident memory per gateway process")
    args = parser.parse_args()
    plot(memory_series.read_csv(args.series), args.title, args.png)


if __name__ == "__main__":
    main()
