"""Index algorithms written in NumPy: Flat (exact), IVF and HNSW."""
