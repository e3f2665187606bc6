"""Text analysis's third-party parts: stemmers (the ``domain.text_index.analysis.Stemmer``
port)."""
