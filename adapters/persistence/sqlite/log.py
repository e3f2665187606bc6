"""``SqlLogRepository``: the replication log in the same SQLite file and transaction."""

from __future__ import annotations

import json

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from adapters.persistence.sqlite.tables import (
    LOG_LAST_INDEX,
    LOG_LAST_TERM,
    replication_log,
    sequences,
)
from adapters.persistence.sqlite.transaction import SqlTransaction
from domain.replication import LogEntry, LogPosition, Op


class SqlLogRepository:
    """``LogRepository`` on SQLite; used through ``SqlUnitOfWork.log``."""

    def __init__(self, tx: SqlTransaction) -> None:
        self._tx = tx

    def append(self, entry: LogEntry) -> None:
        last = self.last()
        if entry.index != last.index + 1:
            raise ValueError(f"log entry {entry.index} does not follow {last.index}")
        ops = json.dumps([op.to_json() for op in entry.ops], separators=(",", ":"))
        self._tx.write(
            replication_log.insert().values(idx=entry.index, term=entry.term, ops_json=ops)
        )
        for name, value in ((LOG_LAST_INDEX, entry.index), (LOG_LAST_TERM, entry.term)):
            statement = sqlite_insert(sequences).values(name=name, value=value)
            self._tx.write(
                statement.on_conflict_do_update(
                    index_elements=["name"], set_={"value": statement.excluded.value}
                )
            )

    def last(self) -> LogPosition:
        rows = self._tx.read(
            select(sequences.c.name, sequences.c.value).where(
                sequences.c.name.in_([LOG_LAST_INDEX, LOG_LAST_TERM])
            )
        ).all()
        values = {name: int(value) for name, value in rows}
        return LogPosition(values.get(LOG_LAST_INDEX, 0), values.get(LOG_LAST_TERM, 0))

    def first_index(self) -> int:
        first = self._tx.read(select(func.min(replication_log.c.idx))).scalar_one()
        return self.last().index + 1 if first is None else int(first)

    def term_at(self, index: int) -> int | None:
        if index == 0:
            return 0
        term = self._tx.read(
            select(replication_log.c.term).where(replication_log.c.idx == index)
        ).scalar_one_or_none()
        return None if term is None else int(term)

    def entries_after(self, index: int, limit: int) -> list[LogEntry]:
        rows = self._tx.read(
            select(replication_log.c.idx, replication_log.c.term, replication_log.c.ops_json)
            .where(replication_log.c.idx > index)
            .order_by(replication_log.c.idx)
            .limit(limit)
        ).all()
        return [
            LogEntry(int(i), int(t), tuple(Op.from_json(o) for o in json.loads(ops)))
            for i, t, ops in rows
        ]

    def compact(self, through: int) -> int:
        result = self._tx.write(delete(replication_log).where(replication_log.c.idx <= through))
        return int(result.rowcount)
