"""What admins and members read about usage: token statistics, the user table with usage,
per-member totals, a member's own window, CSV exports and the activity log."""

__all__ = [
    "activity",
    "exports",
    "member_stats",
    "token_stats",
    "token_window",
]
