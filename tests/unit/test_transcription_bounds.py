"""services/datasets/transcription.py's arithmetic: a recording's exact charge by the minute,
and a bound on its transcript's embedding that chunking never passes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.rag import Recording, plan_for, split
from quartermaster.services.datasets.transcription import embedding_bound, tokens_heard

TOKENIZER = tokenizer_for_model("all-MiniLM-L6-v2")
WORDS = st.sampled_from(["the", "keeper", "feeds", "cats", "on", "Tuesday", "lighthouse", "9"])


def test_a_recording_is_charged_400_tokens_a_minute_rounded_up() -> None:
    assert tokens_heard(Recording(60)) == 400
    assert tokens_heard(Recording(4.1)) == 28
    assert tokens_heard(Recording(3 * 3600)) == 72_000


@settings(max_examples=40, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=900), st.sampled_from([64, 256, 8192]))
def test_chunks_of_a_transcript_never_pass_the_bound(words: list[str], window: int) -> None:
    text = " ".join(words)
    plan = plan_for(window)
    chunks = split(text, TOKENIZER, plan)
    assert sum(chunk.tokens for chunk in chunks) <= embedding_bound(TOKENIZER.count(text), plan)
