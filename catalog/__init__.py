"""The catalog read side: the data folder, the product database, the catalog's index and product search.

Shared by the ingest (which writes the catalog) and the web app (which searches it).
"""
