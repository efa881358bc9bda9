"""The soak's memory record: each server process's resident memory, open file descriptors and
threads, read from /proc every few seconds, kept as a time series (one CSV row per process per
sample) and summed up per process as start, peak, end and a plateau verdict.

The verdict fits a least-squares line to each third of a process's samples by time. Start-up
and warm-up (imports, pools, the first requests of each kind) make the first third climb; a
process whose memory has settled grows by less than PLATEAU_MIB_PER_MIN in the last third,
while a leak keeps the slope it had. The rule is absolute because a leak that is slow against
the warm-up is still a leak: under 0.1 MiB a minute a process gains less than 150 MiB a day.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

PLATEAU_MIB_PER_MIN = 0.1
"""The largest last-third slope (least squares) that still counts as a plateau."""


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    process: int
    """The server's index (0 .. --processes - 1), the same in every sample."""
    pid: int
    rss_mib: float
    fds: int
    threads: int
    operations: int
    """Operations the soak had finished across all servers when the sample was read."""


def read(process: int, pid: int, elapsed_s: float, operations: int) -> Sample:
    """One process's sample from /proc: VmRSS, Threads, and the entries of fd/."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss_kib = int(status["VmRSS"].split()[0])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = int(status["Threads"])
    return Sample(
        round(elapsed_s, 1), process, pid, round(rss_kib / 1024, 1), fds, threads, operations
    )


def write_csv(samples: list[Sample], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Sample)])
        writer.writeheader()
        writer.writerows(asdict(sample) for sample in samples)


def read_csv(path: Path) -> list[Sample]:
    with path.open(newline="") as source:
        return [
            Sample(
                float(row["elapsed_s"]),
                int(row["process"]),
                int(row["pid"]),
                float(row["rss_mib"]),
                int(row["fds"]),
                int(row["threads"]),
                int(row["operations"]),
            )
            for row in csv.DictReader(source)
        ]


def by_process(samples: list[Sample]) -> dict[int, list[Sample]]:
    series: dict[int, list[Sample]] = {}
    for sample in samples:
        series.setdefault(sample.process, []).append(sample)
    return series


def slope_mib_per_min(samples: list[Sample]) -> float:
    """The least-squares slope of RSS over time; 0 for fewer than two distinct times."""
    times = [s.elapsed_s / 60 for s in samples]
    if len(set(times)) < 2:
        return 0.0
    mean_t = sum(times) / len(times)
    mean_m = sum(s.rss_mib for s in samples) / len(samples)
    covariance = sum(
        (t - mean_t) * (s.rss_mib - mean_m) for t, s in zip(times, samples, strict=True)
    )
    return covariance / sum((t - mean_t) ** 2 for t in times)


def summary(samples: list[Sample]) -> dict[str, Any]:
    """Start, peak and end RSS, fds and threads, the slopes of the first and last thirds, and
    whether the last third is flat enough to call a plateau (module docstring)."""
    end_s = samples[-1].elapsed_s
    first = [s for s in samples if s.elapsed_s <= end_s / 3]
    last = [s for s in samples if s.elapsed_s >= 2 * end_s / 3]
    last_slope = slope_mib_per_min(last)
    return {
        "pid": samples[0].pid,
        "rss_mib": {
            "start": samples[0].rss_mib,
            "peak": max(s.rss_mib for s in samples),
            "end": samples[-1].rss_mib,
        },
        "fds": {
            "start": samples[0].fds,
            "peak": max(s.fds for s in samples),
            "end": samples[-1].fds,
        },
        "threads": {"start": samples[0].threads, "end": samples[-1].threads},
        "slope_mib_per_min": {
            "first_third": round(slope_mib_per_min(first), 3),
            "last_third": round(last_slope, 3),
        },
        "plateau": last_slope <= PLATEAU_MIB_PER_MIN,
    }


def summaries(samples: list[Sample]) -> dict[str, Any]:
    per_process = {str(p): summary(series) for p, series in sorted(by_process(samples).items())}
    return {
        "plateau_rule": (
            f"plateau when the least-squares slope of RSS over the last third of the run is "
            f"at most {PLATEAU_MIB_PER_MIN} MiB/min"
        ),
        "plateau_all": all(entry["plateau"] for entry in per_process.values()),
        "processes": per_process,
    }
