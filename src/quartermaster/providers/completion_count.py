"""A legacy completion (/v1/completions) as its upstream bills it, bounded before the call like a
chat's prompt (prompt_count.py): each prompt as written, without a chat's framing, with the
suffix and the markers around it; and every answer the upstream writes, kept or not.

OpenAI's legacy API writes `n` answers for each prompt of a list, or `best_of` candidates when
that is more, and bills them all. With `echo` an answer starts with its prompt, which OpenAI has
billed again as completion tokens; the hold counts it so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quartermaster.providers.prompt_count import PromptCount
from quartermaster.providers.tokenizer import Tokenizer

SUFFIX_FRAMING = 3
"""Tokens that frame an insertion beyond its text: the prefix, suffix and middle markers."""


@dataclass(frozen=True)
class Completion:
    """What a legacy completion asks beyond a chat's fields (services/metering.py holds it)."""

    prompts: tuple[str, ...]
    suffix: str = ""
    best_of: int = 1
    echo: bool = False

    def count(self, tokenizer: Tokenizer) -> list[PromptCount]:
        """Each prompt's tokens, with the suffix that goes with each."""
        suffix = tokenizer.count(self.suffix) + SUFFIX_FRAMING if self.suffix else 0
        return [PromptCount(tokenizer.count(prompt) + suffix) for prompt in self.prompts]

    def answers(self, n: int, limit: int, longest_prompt: int) -> int:
        """How many answers of `limit` tokens to hold. An echoed answer is longer by its prompt:
        held as whole answers more, so that the hold's output limit stays the caller's."""
        each = max(n, self.best_of)
        if self.echo:
            each *= math.ceil((limit + longest_prompt) / limit)
        return len(self.prompts) * each
