"""Vendor catalog ingest: readers, validation, image fetching, dedup, batch embedding.

Not built yet: see the catalog ingest issue.
"""
