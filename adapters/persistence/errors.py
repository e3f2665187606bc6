"""Errors of the persistence adapters that are programming errors, not domain outcomes."""

from __future__ import annotations


class UnitOfWorkError(RuntimeError):
    """A unit of work was used outside its ``with`` block or against its mode."""


class ReadOnlyUnitOfWork(UnitOfWorkError):
    """A write was attempted through a unit of work opened with ``read_only=True``."""

    def __init__(self) -> None:
        super().__init__("this unit of work was opened read-only and cannot write")


class InactiveUnitOfWork(UnitOfWorkError):
    """A repository was used outside the ``with`` block of its unit of work."""

    def __init__(self) -> None:
        super().__init__("the unit of work is not active; use it inside a `with` block")
