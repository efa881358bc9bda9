"""The JSON API under /api, and the error shape every HTTP surface shares."""
