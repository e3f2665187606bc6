"""The package version, sent in the User-Agent header."""

__version__ = "0.1.0"
USER_AGENT = f"stacksdb-client-python/{__version__}"
