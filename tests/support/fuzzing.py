"""The rules no OpenAPI schema can state, and how a fuzzer is told about them.

The served schema states every rule it can (types, enums, bounds, patterns, the filter
language, each index type's parameters), so a request it allows and the server refuses is a
bug, with the exceptions below: rules that depend on what is stored or on a sum over the
body. Each is a 422 problem with its own ``type`` (and a detail that says which rule), so a
fuzzer can tell them apart from a schema that lies. Used by ``benchmarks/fuzz.py`` (the
schemathesis command line, through ``tests.support.fuzz_hooks``) and ``tests/e2e/test_fuzz.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:stacksdb:problem:"


@dataclass(frozen=True)
class DynamicRule:
    """A 422 that a schema-valid request may get: its problem ``slug`` and, where the slug
    covers static rules too, the ``detail`` that marks the dynamic one."""

    name: str
    slug: str
    detail: str = ""

    def matches(self, slug: str, detail: str) -> bool:
        return slug == self.slug and re.search(self.detail, detail) is not None


DYNAMIC_RULES = (
    # The library's own dimension: an embedding or query vector of another length; and an
    # embedder's, which a library that names one and a dimension must agree with.
    DynamicRule("the library's dimension", "dimension-mismatch"),
    DynamicRule("the embedder's dimension", "invalid-input", r"embedder makes \d+-dimensional"),
    # A cursor has the stated shape, but only the listing that handed it out takes it.
    DynamicRule("a cursor of another listing", "invalid-cursor"),
    # Metadata is at most max_metadata_bytes as compact JSON: a sum over keys and values
    # (and their JSON escapes) that no per-field bound can state.
    DynamicRule("metadata size as JSON", "limit-exceeded", r"bytes as JSON"),
    # The filter's nesting depth is a setting (max_filter_depth); JSON Schema has no depth.
    DynamicRule("filter depth", "invalid-filter", r"nested deeper than"),
    # Whether the library has an embedder: without one, a chunk needs its embedding and a
    # vector search needs its vector; with one, a text to embed must not be empty.
    DynamicRule("the library has no embedder", "no-embedder"),
    DynamicRule("the library has no embedder", "invalid-input", r"has no embedder"),
    DynamicRule("an empty text to embed", "invalid-input", r"nothing to embed"),
    # Relations between two fields, which JSON Schema cannot compare.
    DynamicRule("hybrid.candidates at least k", "invalid-input", r"must be at least k"),
    DynamicRule("k x group_size at most the maximum", "limit-exceeded", r"k x group_size"),
    # Chunk ids are unique within one request: a rule across the items of a list.
    DynamicRule("chunk ids unique in one request", "invalid-input", r"appears twice in one"),
    # A filter in a query string is at most 16,384 characters of JSON text: a bound on the
    # text, which the schema of its JSON content cannot carry.
    DynamicRule(
        "a filter query of at most 16,384 characters",
        "validation-failed",
        r"query\.filter: String should have at most",
    ),
    # What a search mode needs (hybrid and keyword: a query; hybrid: a vector too, or an
    # embedder): stated in the field descriptions, not as if/then, which generators mishandle.
    DynamicRule("the inputs a search mode needs", "invalid-input", r"mode needs a"),
)

# A remote embedder the request named that failed (502) or timed out (504): the documented
# answer when the upstream is at fault, as it is for a URL a fuzzer made up.
UPSTREAM_FAILURES = {502: "embedder-failed", 504: "embedder-timed-out"}


def _problem(content_type: str, body: bytes) -> tuple[str, str]:
    """The slug of a problem answer's type and its detail ("", "" for another answer)."""
    if not content_type.startswith(PROBLEM_JSON):
        return "", ""
    problem = json.loads(body)
    return str(problem.get("type", "")).removeprefix(PROBLEM_TYPE), str(problem.get("detail"))


def dynamic_rule_of(status: int, content_type: str, body: bytes) -> DynamicRule | None:
    """The dynamic rule a 422 problem answer reports, or None for any other answer."""
    if status != 422:
        return None
    slug, detail = _problem(content_type, body)
    return next((rule for rule in DYNAMIC_RULES if rule.matches(slug, detail)), None)


def is_upstream_failure(status: int, content_type: str, body: bytes) -> bool:
    """A 502 or 504 problem that says a remote embedder failed."""
    slug, _ = _problem(content_type, body)
    return status in UPSTREAM_FAILURES and UPSTREAM_FAILURES[status] == slug
