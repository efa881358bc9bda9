"""What a chat asks of its model beyond text, and the rule that refuses it when the model
cannot: the catalog says what each model can do (`qm models set NAME --tools …`), and a call
asking for more is refused before anything is held or sent, naming the field and the model.
Everything else a call carries is forwarded: the gateway refuses only what the model cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass

from quartermaster.domain.errors import InvalidInput


@dataclass(frozen=True)
class Asks:
    """Each need, by the field of the request that asks for it (None: not asked)."""

    tools: str | None = None
    vision: str | None = None
    audio_input: str | None = None
    files: str | None = None
    logprobs: str | None = None
    choices: int = 1


@dataclass(frozen=True)
class Can:
    """What the catalog says the model can do."""

    tools: bool = False
    vision: bool = False
    audio_input: bool = False
    logprobs: bool = False
    max_choices: int = 1


NEEDS = (
    ("tools", "tools", "tool calling", "--tools"),
    ("vision", "vision", "images", "--vision"),
    ("files", "vision", "files", "--vision"),
    ("audio_input", "audio_input", "audio input", "--audio-input"),
    ("logprobs", "logprobs", "log probabilities", "--logprobs"),
)
"""(need, the capability it takes, what a person calls it, the flag that grants it)."""


def require_capable(model: str, can: Can, asks: Asks) -> None:
    """Refuses the first thing `asks` wants that `model` cannot do (400, param names the field)."""
    for need, capability, what, flag in NEEDS:
        field = getattr(asks, need)
        if field is not None and not getattr(can, capability):
            raise InvalidInput(
                f"{model} does not take {what} ({field}); use a model that does, or an "
                f"operator can enable it with `qm models set {model} {flag}`",
                param=field,
                code="unsupported_parameter",
            )
    if asks.choices > can.max_choices:
        raise InvalidInput(
            f"{model} gives at most {can.max_choices} "
            f"{'choice' if can.max_choices == 1 else 'choices'} per request; n is {asks.choices}",
            param="n",
            code="unsupported_value",
        )
