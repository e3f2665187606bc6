"""The metadata filter language: a JSON tree parsed into immutable, typed domain objects.

A filter is a tree. A leaf is ``{"field": NAME, "op": OP, "value": V}``; inner nodes are
``{"and": [F, ...]}``, ``{"or": [F, ...]}`` and ``{"not": F}``. ``parse_filter`` turns the
JSON into ``Condition``/``And``/``Or``/``Not`` and raises ``InvalidFilter`` with a
``location`` such as ``filter.and[1].value`` for the first node it cannot accept.

Fields
    ``KEY``: a key of the chunk's metadata. ``document.KEY``: a key of the metadata of the
    chunk's document. System fields ``id``, ``document_id`` (strings) and ``created_at``,
    ``updated_at`` (datetimes) take precedence over chunk metadata keys of the same name.

Values are typed, per chunk (there is no schema):
    * text: a string;
    * number: an int or a float, compared together as IEEE-754 doubles (integers beyond
      2**53 compare approximately, as in JSON and JavaScript); ``True``/``False`` are never
      numbers;
    * boolean;
    * datetime: a string in RFC 3339 ``date-time`` form with an explicit offset, e.g.
      ``2024-05-01T12:00:00Z`` or ``2024-05-01T14:00:00.5+02:00``, compared as instants to
      the microsecond. A metadata string that is such a date-time is both a text and a
      datetime value. A filter string that is such a date-time is a datetime operand for
      ``eq, ne, in, nin, gt, gte, lt, lte``: it matches metadata strings that are date-times
      of the same instant, whatever their offset or spelling. ``contains`` always treats its
      operand as text. On ``id`` and ``document_id`` strings are always text. On
      ``created_at``/``updated_at`` every value must be such a date-time;
    * list: a list of scalars, reachable through ``contains`` (membership) and ``exists``.

Operators
    ``eq, ne``: a scalar of any kind. ``gt, gte, lt, lte``: a number or a datetime.
    ``in, nin``: a non-empty list of scalars. ``contains``: a string is a substring of a
    string field or an element of a list field; a number or a boolean is an element of a
    list field. ``exists``: a boolean.

Semantics (``matches`` is the reference; ``domain.metadata_index`` agrees with it exactly)
    * A field is *missing* when the key is absent or its value is ``null``.
    * Every leaf but ``exists`` matches only a field that holds a value comparable with the
      operand: same kind (text with text, number with number, boolean with boolean,
      datetime with date-time strings), a scalar for ``eq, ne, gt..lte, in, nin``. So a
      missing field or a value of another kind never matches, not even ``ne`` or ``nin``:
      ``ne`` means "has a value of this kind, and it differs". ``nin`` means "has a scalar
      comparable with at least one listed value, and equal to none". This keeps every leaf
      a statement about a value the chunk has; ``not`` is the one way to select chunks for
      which a leaf fails, missing fields included: ``not(eq x)`` matches a chunk without
      the field, ``ne x`` does not; ``and(exists true, not(eq x))`` is the in-between.
    * ``exists true`` matches a field that is present (any kind, an empty list too);
      ``exists false`` its complement.
    * ``and``/``or``/``not`` are the Boolean connectives over those leaves (two-valued).

Modules
    ``tree``: the parsed tree (fields, operators, operands, ``and``/``or``/``not``).
    ``parsing``: ``parse_filter``, JSON to tree, every check with its location.
    ``coercion``: RFC 3339 strings, datetimes and numbers as comparable doubles and
    microseconds.
    ``reference``: ``matches``, the semantics above evaluated on one chunk.
    The evaluation over a whole library's columns is ``domain.metadata_index``.
"""

from domain.filters.coercion import as_number, datetime_micros, rfc3339_micros
from domain.filters.parsing import DEFAULT_MAX_DEPTH, parse_filter
from domain.filters.reference import ChunkFields, matches
from domain.filters.tree import (
    DOCUMENT_PREFIX,
    LIST_OPS,
    RANGE_OPS,
    And,
    Boolean,
    Condition,
    FieldRef,
    Filter,
    Instant,
    Not,
    Number,
    Op,
    Operand,
    Or,
    Scope,
    SystemField,
    Text,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DOCUMENT_PREFIX",
    "LIST_OPS",
    "RANGE_OPS",
    "And",
    "Boolean",
    "ChunkFields",
    "Condition",
    "FieldRef",
    "Filter",
    "Instant",
    "Not",
    "Number",
    "Op",
    "Operand",
    "Or",
    "Scope",
    "SystemField",
    "Text",
    "as_number",
    "datetime_micros",
    "matches",
    "parse_filter",
    "rfc3339_micros",
]
