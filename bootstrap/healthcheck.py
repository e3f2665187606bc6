"""`python -m bootstrap.healthcheck`: the image's HEALTHCHECK. Exits 0 when /readyz says ready.

It reads the same STACKSDB_* settings as the server, so it knows the port and the API key.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from bootstrap.settings import Settings


def main() -> int:
    settings = Settings()
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::"} else settings.host
    request = urllib.request.Request(f"http://{host}:{settings.port}/readyz")
    if settings.api_key:
        request.add_header("Authorization", f"Bearer {settings.api_key}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
