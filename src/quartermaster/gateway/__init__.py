"""The OpenAI-compatible gateway under /v1: the only way programs and the web chat reach models,
so that every token is metered and every cap enforced."""
