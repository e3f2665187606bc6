"""Runnable examples of the Python SDK; run them from the repo root with
``python -m examples.<name> --url http://127.0.0.1:8000``."""
