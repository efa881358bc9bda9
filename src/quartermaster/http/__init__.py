"""HTTP plumbing every web adapter shares (`api/`, `gateway/`, `web/`): the most a body may
carry (body_limit.py), the request's context
and caller, CSRF and the client certificate (deps.py), the error shapes (errors.py), the session
cookies (cookies.py), bounded request fields (fields.py), the lazily built providers
(providers.py), the edge rule on text no field may hold (text_guard.py) and the OpenAPI schema
as the app answers (openapi.py). Adapters import this, never each other."""

__all__ = [
    "body_limit",
    "cookies",
    "deps",
    "errors",
    "fields",
    "openapi",
    "providers",
    "text_guard",
]
