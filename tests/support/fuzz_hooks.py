"""Schemathesis hooks for ``benchmarks/fuzz.py`` (``SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks``).

Every check runs. Three failures are dropped: a schema-valid request refused by a rule no
schema can state (``tests.support.fuzzing.DYNAMIC_RULES``); the documented 502/504 of a
remote embedder that failed (a made-up URL); and an ``Allow`` that names the methods of
every template the path matches where the check compares it with one template's
(``.../chunks/count`` is also the chunk whose id is "count": RFC 9110's ``Allow`` is the
target resource's, so the union, ``tests.support.documented_methods``). The engine counts
what it dropped, and each drop is logged, one reason per line, to the file
``STACKSDB_FUZZ_DYNAMIC_LOG`` names.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from schemathesis.core.failures import ServerError
from schemathesis.openapi.checks import AllowHeaderMismatch, RejectedPositiveData

from tests.support.documented_methods import documented_methods
from tests.support.fuzzing import dynamic_rule_of, is_upstream_failure

DYNAMIC_LOG = "STACKSDB_FUZZ_DYNAMIC_LOG"


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    reason = _dropped_because(failure, case, response)
    if reason is None:
        return True
    log = os.environ.get(DYNAMIC_LOG)
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(reason + "\n")
    return False


def _dropped_because(failure: Any, case: Any, response: Any) -> str | None:
    content_type = (response.headers.get("content-type") or [""])[0]
    answer = (response.status_code, content_type, response.content)
    if isinstance(failure, RejectedPositiveData):
        rule = dynamic_rule_of(*answer)
        return None if rule is None else rule.name
    if isinstance(failure, ServerError) and is_upstream_failure(*answer):
        return f"remote embedder failed ({response.status_code})"
    if isinstance(failure, AllowHeaderMismatch) and _allows_its_templates(failure, case, response):
        return "Allow of a path two templates match (their union)"
    return None


def _allows_its_templates(failure: AllowHeaderMismatch, case: Any, response: Any) -> bool:
    """The ``Allow`` misses none of the operation's methods, and every other method it
    names is documented for another template the requested path matches."""
    path = urlsplit(response.request.url).path
    documented = documented_methods(case.operation.schema.raw_schema["paths"], path)
    return not failure.missing_methods and set(failure.undocumented_methods) <= documented
