"""Individual plans: what operators offer and which plan a user is on (offers.py),
subscriptions and refills (subscriptions.py), and taking payment (payments.py)."""

from quartermaster.services.plans.offers import (
    current,
    default_terms,
    list_plans,
    parse_terms,
    public,
    save,
    seed,
)

__all__ = [
    "current",
    "default_terms",
    "list_plans",
    "parse_terms",
    "payments",
    "public",
    "save",
    "seed",
    "subscriptions",
]
