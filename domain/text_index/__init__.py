"""Text retrieval: a library's keyword index (Okapi BM25 over its chunks' texts, ``bm25``), the
analysis that turns a text into terms (``analysis``), its NumPy posting lists (``postings``),
and the fusion of a keyword search with a vector search (``fusion``)."""
