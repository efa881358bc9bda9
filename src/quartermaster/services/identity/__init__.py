"""Who is calling: accounts and passwords, signing in (password, TOTP, CAC), sessions, API keys
(and the ones this process authenticated a moment ago), login history, and who administers
which organization."""

__all__ = [
    "accounts",
    "api_keys",
    "authz",
    "cac",
    "known_keys",
    "logins",
    "mfa",
    "profile",
    "sessions",
    "signin",
]
