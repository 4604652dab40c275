"""`sluice dashboard`: a server-rendered page for operators (Starlette, Jinja2, a little vanilla JS).

It reads only what `sluice status` reads (`sluice.ops.status`, `sluice.ops.deadletters`,
`sluice.ops.workers`) plus the store summaries of `sluice.ops.stores`: bounded commands, never
KEYS or a scan. Retry and purge of dead letters are the only actions; each needs the session's
CSRF token, and `read_only` refuses them on the server. Needs the `dashboard` extra.
"""
