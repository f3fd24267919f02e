"""The FAISS vector index: int64 ids, filters, persistence, the Parquet vector store, index choice.

Knows no images, no catalog and no web: vectors and item attributes in, ranked ids out.
"""
