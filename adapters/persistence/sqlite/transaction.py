"""The connection one ``SqlUnitOfWork`` shares with its repositories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from sqlalchemy import Connection, CursorResult, Executable, Row, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from adapters.persistence.errors import InactiveUnitOfWork, ReadOnlyUnitOfWork
from adapters.persistence.sqlite.tables import SEQ_COUNTER, sequences
from domain.errors import StoreUnavailable


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn SQLite's operational failures (disk full, read-only file, locked past the busy
    timeout, I/O error) and an exhausted connection pool into the domain's
    ``StoreUnavailable``, so nothing above the adapter has to know SQLAlchemy's exceptions."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(f"the SQLite store failed: {exc.orig}") from exc
    except PoolTimeout as exc:
        raise StoreUnavailable("no database connection became free in time") from exc


# SQLAlchemy 2.1 types rows by a TypeVarTuple; these rows hold any number of columns.
AnyResult: TypeAlias = CursorResult[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


class SqlTransaction:
    """A unit of work's connection while it is active, its mode, and the seq counter."""

    def __init__(self, read_only: bool) -> None:
        self.read_only = read_only
        self.connection: Connection | None = None

    def reading(self) -> Connection:
        if self.connection is None:
            raise InactiveUnitOfWork()
        return self.connection

    def writing(self) -> Connection:
        connection = self.reading()
        if self.read_only:
            raise ReadOnlyUnitOfWork()
        return connection

    def read(self, statement: Executable, parameters: Any = None) -> AnyResult:
        connection = self.reading()
        with translated_errors():
            return connection.execute(statement, parameters)

    def write(self, statement: Executable, parameters: Any = None) -> AnyResult:
        """Execute ``statement``; a list of parameter dicts runs as one executemany."""
        connection = self.writing()
        with translated_errors():
            return connection.execute(statement, parameters)

    def allocate_seqs(self, count: int) -> int:
        """The first of ``count`` fresh, increasing seq numbers (one counter update).

        Safe without further locking: a write transaction holds SQLite's write lock from
        its ``BEGIN IMMEDIATE``, so no other writer can interleave.
        """
        statement = (
            update(sequences)
            .where(sequences.c.name == SEQ_COUNTER)
            .values(value=sequences.c.value + count)
            .returning(sequences.c.value)
        )
        last: int = self.write(statement).scalar_one()
        return last - count + 1
