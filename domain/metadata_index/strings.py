"""Scalar string values over slots, dictionary-encoded as int32 codes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from domain.index.scoring import Mask
from domain.metadata_index.columns import Column


class StringDictionary:
    """Scalar strings dictionary-encoded: an int32 code per slot, a refcount per string.

    Codes of strings no slot holds any more are reused, so the dictionary stays as large as
    the number of distinct live strings. Equality is one vectorised comparison of codes;
    ``contains`` loops in Python over the distinct strings, never over the slots.
    """

    def __init__(self) -> None:
        self.codes = Column(np.int32)
        self.code_of: dict[str, int] = {}
        self.refs: list[int] = []
        self.text_of: list[str] = []
        self._free: list[int] = []

    def put(self, slot: int, text: str) -> None:
        code = self.code_of.get(text)
        if code is None:
            code = self._free.pop() if self._free else len(self.refs)
            if code == len(self.refs):
                self.refs.append(0)
                self.text_of.append(text)
            self.code_of[text], self.text_of[code] = code, text
        self.refs[code] += 1
        self.codes.put(slot, code)

    def drop(self, slot: int, text: str) -> None:
        self.codes.drop(slot)
        code = self.code_of[text]
        self.refs[code] -= 1
        if self.refs[code] == 0:
            del self.code_of[text]
            self._free.append(code)

    def equal_any(self, texts: Iterable[str], n: int) -> Mask:
        codes = [self.code_of[t] for t in texts if t in self.code_of]
        if not codes:
            return np.zeros(n, dtype=np.bool_)
        if len(codes) == 1:
            return self.codes.where(np.equal, codes[0], n)
        return self.codes.isin(codes, n)

    def containing(self, part: str, n: int) -> Mask:
        """Slots whose string contains ``part``: a Python loop over distinct strings only."""
        return self.equal_any([t for t in self.code_of if part in t], n)
