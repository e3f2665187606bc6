"""The product's text analysers, for tests and benchmarks that build a keyword index or live
libraries themselves (the container wires the same ones)."""

from __future__ import annotations

from adapters.text.snowball import SnowballEnglish
from domain.text_index.analysis import Analyzers

ANALYZERS = Analyzers(english=SnowballEnglish())
