"""Audio uploads to text, through the catalog's speech model (kind `transcription`): the local
Whisper model, or an OpenAI-compatible upstream's `/audio/transcriptions`.

A transcription is charged in training tokens at the speech model's training rate, for
`TOKENS_PER_MINUTE` tokens a minute of audio: upstreams bill speech by the minute, and the
duration is known from the file's headers before anything is sent, so the hold is exact and a
recording over the member's cap is refused up front. Its transcript is embedded and charged as
any document is, on the embedding model's hold, which is taken at the same time for as many
tokens as that many minutes can hold (chunk overlap included) and settles at the count.

Errors: InvalidInput (transcription_unavailable: no speech model is enabled, served here and
allowed for the caller — nothing is charged), ServiceUnavailable (transcription_failed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select

from quartermaster.domain.errors import InvalidInput, ServiceUnavailable
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import ModelKind, Progress
from quartermaster.providers.base import Transcriber, TranscriptionRequest
from quartermaster.providers.config import LOCAL
from quartermaster.providers.errors import ProviderError
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.rag import ChunkPlan, Recording
from quartermaster.services.context import Context
from quartermaster.services.ledger import model_rules
from quartermaster.store.models import ModelCatalogEntry

TOKENS_PER_MINUTE = 400
"""An upper bound of speech: fast talkers reach 250 words a minute, about 330 tokens."""


@dataclass(frozen=True)
class SpeechModel:
    name: str
    transcriber: Transcriber


def tokens_heard(recording: Recording) -> int:
    """What a recording's transcription is charged for, in the speech model's tokens."""
    return math.ceil(recording.duration_s * TOKENS_PER_MINUTE / 60)


def ttl_s(recording: Recording) -> int:
    """How much longer than usual its holds are kept: a second a second of audio; the local
    model transcribed 3.3 times faster than that on two busy cores."""
    return math.ceil(recording.duration_s)


def embedding_bound(tokens: int, plan: ChunkPlan) -> int:
    """The most tokens chunks of a `tokens`-long text can add up to, overlaps included."""
    chunks = math.ceil(tokens / (plan.tokens - plan.overlap)) + 1
    return tokens + chunks * plan.overlap


async def speech_model(
    ctx: Context, providers: ProviderRegistry, principal: Principal, filename: str
) -> SpeechModel:
    """The first enabled speech model served here and allowed for the caller (local first)."""
    async with ctx.uow.begin(write=False) as tx:
        names = await tx.session.scalars(
            select(ModelCatalogEntry.name)
            .where(
                ModelCatalogEntry.kind == ModelKind.TRANSCRIPTION.value,
                ModelCatalogEntry.enabled.is_(True),
            )
            .order_by(ModelCatalogEntry.provider != LOCAL, ModelCatalogEntry.name)
        )
        allowed = await model_rules.allowed_for_user(tx.session, principal.uid)
    for name in names:
        served = providers.get(name) if name in providers else None
        if isinstance(served, Transcriber) and (allowed is None or name in allowed):
            return SpeechModel(name, served)
    raise InvalidInput(
        f"{filename} is audio, and no speech-to-text model is configured for you; nothing was "
        "stored or charged — ask an operator to enable a transcription model "
        "(docs/providers.md)",
        param="files",
        code="transcription_unavailable",
    )


async def transcribe(
    model: SpeechModel,
    filename: str,
    data: bytes,
    recording: Recording,
    on_progress: Progress | None = None,
) -> str:
    """The recording's words; a provider failure is the caller's 503, nothing charged."""
    request = TranscriptionRequest(data, filename, recording.duration_s, on_progress)
    try:
        transcript = await model.transcriber.transcribe(request)
    except ProviderError as exc:
        raise ServiceUnavailable(
            f"{filename}: the speech model {model.name} failed ({exc}); nothing was stored or "
            "charged, try again shortly",
            code="transcription_failed",
        ) from None
    return transcript.text
