"""What an activity-log entry says to a person: who did it, who or what it was about, and each
change as "Max tokens 2,000,000 → 2,500,000", with names and emails where the log keeps ids.

The log stores the fields that changed under their code names (docs/activity-log.md); this is
the one place that turns them into the words the pages use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quartermaster.web.render import money

People = Mapping[str, Mapping[str, Any]]

LABELS = {
    "max_inference_tokens": "Max tokens",
    "max_training_tokens": "Max train tokens",
    "mfa": "Two-factor authentication",
    "cac": "CAC certificate",
    "amount": "Tokens asked",
    "approved_amount": "Tokens approved",
    "user_id": "Member",
    "models": "Allowed models",
    "prefix": "Key",
    "terms_version": "Terms version",
}
HIDDEN = frozenset({"plan_hash", "sha256", "document_id", "id", "created_at"})
"""Fields kept for auditors and exports, not for reading."""
SUBJECTS = {"api_key": "API key", "token_request": "Token request", "purchase": "Purchase"}
SUBJECTS |= {"dataset": "Dataset", "model": "Model", "plan": "Plan"}


def person(user_id: Any, people: People) -> str:
    """ "Ada Lovelace (ada@example.org)", or the email alone, or "user 5" if nobody is known."""
    known = people.get(str(user_id))
    if known is None:
        return f"user {user_id}"
    return f"{known['name']} ({known['email']})" if known.get("name") else str(known["email"])


def label(field: str) -> str:
    return LABELS.get(field) or field.replace("_", " ").capitalize()


def value(field: str, raw: Any, people: People) -> str:
    if raw is None:
        return "none" if field == "models" else "—"
    if isinstance(raw, bool):
        return ("on" if raw else "off") if field == "mfa" else ("yes" if raw else "no")
    if field == "user_id":
        return person(raw, people)
    if isinstance(raw, int):
        return f"{raw:,}"
    if isinstance(raw, list):
        return ", ".join(str(item) for item in raw) or "none"
    return str(raw)


def _per_member(field: str, before: Any, after: Any, people: People) -> str:
    """A bulk change: each member's value before and after, by name."""
    ids = sorted({*(before or {}), *(after or {})}, key=lambda key: (len(key), key))
    each = [
        f"{person(key, people)} {value(field, (before or {}).get(key), people)} → "
        f"{value(field, (after or {}).get(key), people)}"
        for key in ids
    ]
    return f"{label(field)}: " + "; ".join(each)


def changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, people: People
) -> list[str]:
    """One line a field: "Label before → after" when it changed, "Label: value" when the entry
    has only one side (something created or removed)."""
    old, new = _priced(before or {}), _priced(after or {})
    lines = []
    for field in [*new, *(key for key in old if key not in new)]:
        if field in HIDDEN:
            continue
        was, now = old.get(field), new.get(field)
        if isinstance(was, dict) or isinstance(now, dict):
            lines.append(_per_member(field, was, now, people))
        elif field in old and field in new:
            lines.append(
                f"{label(field)} {value(field, was, people)} → {value(field, now, people)}"
            )
        else:
            lines.append(f"{label(field)}: {value(field, now if field in new else was, people)}")
    return lines


def _priced(side: Mapping[str, Any]) -> Mapping[str, Any]:
    """A price with its currency is one value, as the pages show prices: "$1,485.00"."""
    if "price" not in side or "currency" not in side:
        return side
    rest = {k: v for k, v in side.items() if k != "currency"}
    return rest | {"price": money(side["price"], side["currency"])}


def subject(details: Mapping[str, Any], people: People) -> str | None:
    """Who or what a change was about; None for the organization itself (the log is its own)."""
    kind, ident = details.get("target_type"), details.get("target_id")
    if kind is None or kind == "organization":
        return None
    if kind == "user":
        return person(ident, people)
    return f"{SUBJECTS.get(kind, label(kind))} #{ident}"


def who(entry: Mapping[str, Any], people: People) -> str:
    """Who acted; changes made from the command line have no person."""
    if entry["user_id"] is None:
        return entry["email"] or "command line"
    return person(entry["user_id"], people)


def audit_lines(entry: Mapping[str, Any], people: People) -> list[str]:
    """An audit entry's subject, then its changes."""
    details = entry["details"]
    about = subject(details, people)
    found = changes(details.get("before"), details.get("after"), people)
    return [about, *found] if about else found
