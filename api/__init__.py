"""HTTP only: Litestar controllers, request bodies, guards, error pages and the `vitrine serve` command.

Every decision is the workflow's; this package turns requests into calls and results into pages or JSON.
"""
