"""Schema migrations (Alembic) for the one database that holds the catalog and the workflow.

Knows no other package of the project: each revision spells out its own tables, so a migration
written today still means the same thing after the models have moved on.
"""
