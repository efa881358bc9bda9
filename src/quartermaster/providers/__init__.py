"""Model providers: the upstream clients the gateway calls, behind one `Provider` protocol.

This `__all__` is the package's public surface; other layers import only these names.
"""

from quartermaster.providers.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    EmbedResult,
    Provider,
    Sampling,
    TokenUsage,
    Transcriber,
    Transcript,
    TranscriptionRequest,
)
from quartermaster.providers.config import UpstreamConfig, load_upstreams, parse_upstreams
from quartermaster.providers.errors import (
    ProviderBadResponse,
    ProviderConfigError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from quartermaster.providers.local_chat import LocalChatProvider
from quartermaster.providers.local_embed import LocalEmbedProvider
from quartermaster.providers.local_transcribe import LocalTranscribeProvider
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import (
    ModelEntry,
    ProviderFactory,
    ProviderRegistry,
    build_registry,
)
from quartermaster.providers.tokenizer import (
    BpeTokenizer,
    Tokenizer,
    encoding_for_model,
    tokenizer_for_model,
)

__all__ = [
    "BpeTokenizer",
    "ChatChunk",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "EmbedResult",
    "LocalChatProvider",
    "LocalEmbedProvider",
    "LocalTranscribeProvider",
    "ModelEntry",
    "OpenAIHTTPProvider",
    "Provider",
    "ProviderBadResponse",
    "ProviderConfigError",
    "ProviderError",
    "ProviderFactory",
    "ProviderRegistry",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Sampling",
    "TokenUsage",
    "Tokenizer",
    "Transcriber",
    "Transcript",
    "TranscriptionRequest",
    "UpstreamConfig",
    "build_registry",
    "encoding_for_model",
    "load_upstreams",
    "parse_upstreams",
    "tokenizer_for_model",
]
