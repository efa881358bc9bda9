"""HTTP plumbing every web adapter shares (`api/`, `gateway/`, `web/`): the request's context
and caller, CSRF and the client certificate (deps.py), the error shapes (errors.py), and the
session cookies (cookies.py). Adapters import this, never each other."""

__all__ = [
    "cookies",
    "deps",
    "errors",
    "fields",
    "providers",
]
