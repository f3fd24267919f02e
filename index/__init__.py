"""The FAISS vector index: int64 ids, filters, persistence, index choice. Knows no images and no web.

Not built yet: see the vector index issue.
"""
