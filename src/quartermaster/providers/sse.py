"""Server-Sent Events, only as far as OpenAI-style streams use them: `data:` fields, events
ended by an empty line, comments ignored, and the `[DONE]` sentinel that ends a stream."""

from __future__ import annotations

DONE = "[DONE]"


class SSEDecoder:
    """Fed one line at a time (without its line ending); returns an event's data when the event
    is complete. Multi-line data is joined with newlines, as the SSE specification says."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" "))
        return None

    def flush(self) -> str | None:
        """The pending event's data, if any: for streams that end without a final empty line."""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data
