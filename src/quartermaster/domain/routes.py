"""The routes a metered call comes by. Each hold, usage event and monthly roll-up records one, so
the statistics can say which API the tokens went through beside which model (docs/metrics.md)."""

from __future__ import annotations

from enum import StrEnum


class Route(StrEnum):
    """Where a call came in: the first four spend inference tokens, the other three training."""

    CHAT = "chat.completions"
    """/v1/chat/completions, which the dashboard's chat page calls too."""
    RESPONSES = "responses"
    """/v1/responses, OpenAI's Responses API."""
    MESSAGES = "messages"
    """/v1/messages, Anthropic's Messages API."""
    COMPLETIONS = "completions"
    """/v1/completions, OpenAI's legacy text completion."""
    EMBEDDINGS = "embeddings"
    """/v1/embeddings."""
    DATASETS = "datasets"
    """A document ingested into a dataset: its chunks embedded."""
    SEARCH = "search"
    """A query embedded to search datasets: a dataset search, or a chat's retrieval."""
