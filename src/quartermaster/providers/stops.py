"""Stop sequences over streamed text: text is released only once it cannot be the start of a
stop sequence, so a caller never sees part of one (as OpenAI's API behaves)."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._pending = ""

    def push(self, piece: str) -> tuple[str, bool]:
        """The text that is safe to release, and whether a stop sequence was reached (the stop
        sequence and everything after it are dropped)."""
        text = self._pending + piece
        hits = [index for stop in self._stops if (index := text.find(stop)) >= 0]
        if hits:
            self._pending = ""
            return text[: min(hits)], True
        held = max((self._held(text, stop) for stop in self._stops), default=0)
        self._pending = text[len(text) - held :]
        return text[: len(text) - held], False

    def flush(self) -> str:
        """What was held back, once the text has ended without reaching a stop sequence."""
        rest, self._pending = self._pending, ""
        return rest

    @staticmethod
    def _held(text: str, stop: str) -> int:
        """Length of the longest end of `text` that begins `stop`."""
        for length in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:length]):
                return length
        return 0
