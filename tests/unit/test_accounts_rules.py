import pytest

from quartermaster.domain.emails import normalize_email
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.passwords import check_password


def test_emails_compare_case_insensitively() -> None:
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"


@pytest.mark.parametrize("bad", ["alice", "alice@", "@example.com", "a b@example.com", "a@b"])
def test_malformed_emails_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(bad)


def test_short_passwords_are_refused_with_the_minimum() -> None:
    with pytest.raises(InvalidInput, match="at least 12"):
        check_password("short-pw")


@pytest.mark.parametrize("common", ["password1234", "Qwertyuiop123", "correcthorsebatterystaple"])
def test_breached_passwords_are_refused(common: str) -> None:
    with pytest.raises(InvalidInput, match="tried first"):
        check_password(common)


def test_password_built_from_the_email_is_refused() -> None:
    with pytest.raises(InvalidInput):
        check_password("margaret-2026!", "margaret@example.com")


def test_a_long_unusual_password_is_accepted() -> None:
    check_password("violet-anchor-sparrow-9", "alice@example.com")
