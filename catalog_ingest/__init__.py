"""Vendor catalogs in: readers, column mappings, row validation, image fetching, near-duplicates, ingest runs.

Writes through the catalog package (database, vector store, index publish); the web app never imports it.
"""
