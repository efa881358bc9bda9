"""A slow network link between two loopback processes: a TCP relay that holds every chunk, in
each direction, for a fixed one-way delay before passing it on, in order.

A standby whose `primary_conninfo` names the relay's port is as far behind its primary as a
standby across a WAN: what the primary has committed reaches it `delay_s` later. When either end
closes, the chunks still held are dropped and the other end is closed: the primary's crash is
modelled as its host and its link going away together, so what was on the wire never arrives
(with a link that kept delivering, a crash would lose only what was not yet sent).

The relay runs its own event loop in a thread, so synchronous fixtures can use it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.e2e.servers import free_port

CHUNK = 65_536


async def _forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float
) -> None:
    """Read chunks as they come; write each `delay_s` after it was read, in order."""
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await held.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(chunk)
            await writer.drain()

    delivery = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(CHUNK):
            await held.put((loop.time() + delay_s, chunk))
    finally:
        delivery.cancel()  # the link is cut: what is still held is dropped
        with suppress(asyncio.CancelledError, ConnectionError):
            await delivery
        writer.close()


async def _relay(
    port: int, delay_s: float, near: asyncio.StreamReader, near_w: asyncio.StreamWriter
) -> None:
    try:
        far, far_w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        near_w.close()
        return
    directions = [_forward(near, far_w, delay_s), _forward(far, near_w, delay_s)]
    tasks = [asyncio.create_task(direction) for direction in directions]
    # The first end to close cuts both directions.
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    far_w.close()
    near_w.close()


@contextmanager
def wan_relay(target_port: int, delay_s: float) -> Iterator[int]:
    """A relay to 127.0.0.1:`target_port` delaying each direction by `delay_s`; yields its port."""
    loop = asyncio.new_event_loop()
    port = free_port()
    ready = threading.Event()
    stopping: asyncio.Future[None] = loop.create_future()

    async def serve() -> None:
        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _relay(target_port, delay_s, reader, writer)

        async with await asyncio.start_server(relay, "127.0.0.1", port):
            ready.set()
            await stopping

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the relay did not start"
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stopping.set_result, None)
        thread.join(10)
        loop.close()
