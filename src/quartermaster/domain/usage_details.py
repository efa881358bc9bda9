"""What an upstream reports of a call's usage beside its totals: the prompt tokens it read from
its cache and the completion tokens spent reasoning. They are parts of the totals, recorded for
the statistics; the charge is the totals' alone, so a detail never changes what a call costs.

Errors: InvalidInput (param `usage`) for a negative detail or one above its total.
"""

from __future__ import annotations

from quartermaster.domain.errors import InvalidInput


def require_parts(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int, reasoning_tokens: int
) -> None:
    """Refuse details that cannot be parts of these totals (the ledger stores only parts)."""
    for name, part, total, of in (
        ("cached_tokens", cached_tokens, prompt_tokens, "prompt"),
        ("reasoning_tokens", reasoning_tokens, completion_tokens, "completion"),
    ):
        if part < 0:
            raise InvalidInput(f"{name} cannot be negative; it is {part}", param="usage")
        if part > total:
            raise InvalidInput(
                f"{name} is {part}, more than the {total} {of} tokens it is a part of",
                param="usage",
            )


def bounded(part: int, total: int) -> int:
    """An upstream's detail made a part of its total: a detail is informational, so a wrong
    one (an upstream that counts its cache outside the prompt) must never stop the charge."""
    return max(0, min(part, total))
