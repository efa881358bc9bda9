"""Password hashing with argon2id, and verification that stays constant-time for unknown users."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from quartermaster.store.models import User

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("a password nobody has, to spend the same time")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(user: User | None, password: str) -> bool:
    """True when `password` is the user's; spends argon2's time even when there is no user."""
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and user is not None and user.password_hash is not None
