"""Enterprise accounts: provisioning an org, its members, their allocations (one by one or in
bulk), what the org bought, its pool and the numbers above the user table, and token
requests."""

__all__ = [
    "allocations",
    "bulk_allocation",
    "membership",
    "model_list",
    "org_pool",
    "org_summary",
    "provisioning",
    "purchases",
    "rate_limit_settings",
    "token_requests",
]
