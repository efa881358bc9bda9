"""Enterprise accounts: provisioning an org, its members, their allocations (one by one or in
bulk), what the org bought, its pool and the numbers above the user table, and token
requests."""
