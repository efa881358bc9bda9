"""`qm dataset ingest`'s progress by work done: a live bar of the current file's stage (chunks
embedded, pages OCR'd, seconds transcribed) on a terminal; one plain line per event otherwise,
so logs and pipes keep it too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quartermaster.services.datasets import progress

Emit = Callable[[progress.ProgressEvent], None]


def line(event: progress.ProgressEvent) -> str:
    if event.stage == progress.DONE:
        return f"done: {event.files} files ({event.percent:g} %)"
    return (
        f"{event.file} ({event.file_index + 1} of {event.files}): {event.stage} "
        f"{event.done}/{event.total} {event.unit} ({event.percent:g} %)"
    )


@contextmanager
def shown(console: Console) -> Iterator[Emit]:
    """A callback that shows each event on `console` while the block runs."""
    if not console.is_terminal:
        yield lambda event: console.print(line(event), highlight=False, soft_wrap=True)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]} · {task.fields[percent]:g} % of all"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("starting", total=None, unit="", percent=0.0)

        def emit(event: progress.ProgressEvent) -> None:
            description = f"{event.file} · {event.stage}"
            bar.update(task, description=description, completed=event.done, total=event.total)
            bar.update(task, unit=event.unit, percent=event.percent)

        yield emit
