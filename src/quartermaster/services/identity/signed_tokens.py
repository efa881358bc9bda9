"""Short-lived signed tokens (HMAC-SHA256 with the server secret), for steps that must not
need a database row, such as the gap between the password and the TOTP code at sign-in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, payload: dict[str, Any], expires_at: datetime) -> str:
    assert secret, "signing needs the server's secret key"
    body = _b64(json.dumps({**payload, "exp": expires_at.timestamp(), "p": purpose}).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: str, purpose: str, token: str, now: datetime) -> dict[str, Any] | None:
    """The payload, or None when the token is forged, for another purpose, or expired."""
    assert secret, "verifying needs the server's secret key"
    try:
        body, mac = token.split(".")
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        payload: dict[str, Any] = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    if payload.get("p") != purpose or float(payload.get("exp", 0)) < now.timestamp():
        return None
    return payload
