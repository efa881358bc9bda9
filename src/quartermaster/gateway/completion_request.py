"""The body of /v1/completions, OpenAI's legacy text completion: a prompt, or a list of them, to
continue as written, with the fields a chat shares (schemas.Generation).

Forwarded as sent, like a chat's. Read are only the fields that bound its cost (the prompts,
`suffix`, `max_tokens`, `n`, `best_of`, `echo`) or that the catalog must allow (`logprobs`, `n`).
Prompts are text: token arrays, which OpenAI also takes, are refused by name, since their ids
mean something only in one tokenizer's vocabulary and an upstream may not share it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, field_validator

from quartermaster.domain.capabilities import Asks
from quartermaster.gateway.schemas import MAX_CONTENT_CHARS, Generation
from quartermaster.providers.completion_count import Completion

MAX_PROMPTS = 128
MAX_BEST_OF = 20
DEFAULT_MAX_TOKENS = 16
"""OpenAI's, sent to the upstream when the caller gave none: others default to more, or to no
limit at all (llama.cpp's server), and the hold must bound what the answer can cost."""


class CompletionRequest(Generation):
    prompt: str | list[str]
    suffix: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS)
    max_tokens: int | None = Field(default=None, ge=1)
    best_of: int | None = Field(default=None, ge=1, le=MAX_BEST_OF)
    echo: StrictBool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)

    @field_validator("prompt", mode="before")
    @classmethod
    def _text(cls, prompt: Any) -> Any:
        if isinstance(prompt, list) and any(isinstance(item, int | list) for item in prompt):
            raise ValueError("token arrays are not taken; send the prompt as text")
        return prompt

    @field_validator("prompt")
    @classmethod
    def _bounded(cls, prompt: str | list[str]) -> str | list[str]:
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not 1 <= len(prompts) <= MAX_PROMPTS:
            raise ValueError(f"prompt must hold 1 to {MAX_PROMPTS} texts")
        if not all(prompts) or sum(map(len, prompts)) > MAX_CONTENT_CHARS:
            raise ValueError(f"prompts must be non-empty, {MAX_CONTENT_CHARS} characters at most")
        return prompt

    def output_limit(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS

    def completion(self) -> Completion:
        """What the metering reads beyond a chat's fields."""
        prompts = (self.prompt,) if isinstance(self.prompt, str) else tuple(self.prompt)
        return Completion(prompts, self.suffix or "", self.best_of or 1, bool(self.echo))

    def asks(self) -> Asks:
        """Log probabilities at any count (0 still returns the chosen tokens'), and `n` answers
        for each prompt."""
        return Asks(logprobs="logprobs" if self.logprobs is not None else None, choices=self.n or 1)
