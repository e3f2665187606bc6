"""Embedders (the ``domain.embedding.Embedder`` port): the bundled MiniLM run by our own
forward pass (``minilm``, ``bert``, ``bert_kernels``) and the remote providers."""
