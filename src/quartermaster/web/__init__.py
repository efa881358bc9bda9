"""The web dashboard: server-rendered pages (Jinja2 + HTMX, vendored assets, no build step).

Pages call the same services as /api and the CLI, and hold no business rules. A page that needs a
signed-in user redirects to /login; every state-changing form carries the session's CSRF token.
"""
