"""One small database interface over SQLite (sqlite3, aiosqlite) and PostgreSQL (asyncpg).

The store, the reports and retention write their SQL once, with ``?`` placeholders and
constructs both databases share; the few differences (LEAST/GREATEST, zero padding) come
from ``Dialect``. The PostgreSQL connection rewrites ``?`` to ``$n``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")
# A write transaction's work: an async function of the connection it runs on.
TransactionBody = Callable[["Connection"], Coroutine[Any, Any, T]]


class Dialect:
    """SQL that differs between the backends."""

    name = "sqlite"

    def least(self, a: str, b: str) -> str:
        return f"MIN({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"MAX({a}, {b})"

    def two_digits(self, column: str) -> str:
        return f"printf('%02d', {column})"


class PostgresDialect(Dialect):
    name = "postgresql"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    def two_digits(self, column: str) -> str:
        return f"lpad({column}::text, 2, '0')"


SQLITE = Dialect()
POSTGRES = PostgresDialect()


class Connection:
    """The operations the reporting code runs on either backend."""

    dialect: Dialect

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    async def fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    async def executemany_count(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run one statement per row; the number of rows they changed."""
        raise NotImplementedError

    async def insert_new(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Insert rows known to be new (COPY on PostgreSQL)."""
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def transaction(self, body: TransactionBody[T]) -> T:
        """Run ``body(connection)`` as one transaction: committed when it returns (its
        result returned), rolled back when it raises. Writers only."""
        raise NotImplementedError


class SqliteWriter(Connection):
    """The store's SQLite write connection, owned by a thread of its own.

    Each call is one trip to that thread, except ``transaction``: BEGIN IMMEDIATE, every
    statement of the body and COMMIT run in one trip. The body is the same ``async``
    function of a ``Connection`` that PostgreSQL runs, but in the writer's thread it gets
    a connection whose calls finish without suspending, so the thread drives it to its end
    on its own (``_drive``): a batch costs one hand-over between the event loop and the
    thread instead of one per statement. A body must await nothing but its connection.
    """

    dialect = SQLITE

    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self._executor = executor
        self._direct = _DirectSqlite(conn)

    @classmethod
    async def connect(cls, path: Path, pragmas: Sequence[str] = ()) -> SqliteWriter:
        """Open ``path`` in autocommit mode in a new writer thread and apply ``pragmas``."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reporting-writer")

        def connect() -> sqlite3.Connection:
            # Made in the writer's thread: sqlite3 refuses its use from any other.
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                for pragma in pragmas:
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, conn)

    async def _trip(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the writer's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _statement(self, method: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """One call of the thread's connection, in one trip."""
        return await self._trip(lambda: _drive(method(*args)))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return await self._statement(self._direct.fetchall, sql, params)

    async def fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self._statement(self._direct.fetch_dicts, sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._statement(self._direct.execute, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._statement(self._direct.executemany, sql, rows)

    async def executemany_count(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        return await self._statement(self._direct.executemany_count, sql, rows)

    async def insert_new(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        await self._statement(self._direct.insert_new, table, columns, rows)

    async def transaction(self, body: TransactionBody[T]) -> T:
        return await self._trip(self._direct.run_transaction, body)

    async def close(self) -> None:
        """Close the connection and end the thread."""
        try:
            await self._trip(self._direct.conn.close)
        finally:
            # The thread is idle now: it ends at once.
            self._executor.shutdown(wait=True)


class _DirectSqlite(Connection):
    """A sqlite3 connection used from the thread that owns it: async in name only, each
    call finishes without suspending (what ``_drive`` needs)."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    async def fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        # Rows changed, from the connection's running count (the schema has no triggers).
        before = self.conn.total_changes
        self.conn.execute(sql, params)
        return self.conn.total_changes - before

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    async def executemany_count(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        before = self.conn.total_changes
        self.conn.executemany(sql, rows)
        return self.conn.total_changes - before

    async def insert_new(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if rows:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )

    def run_transaction(self, body: TransactionBody[T]) -> T:
        """BEGIN IMMEDIATE, the body, COMMIT; ROLLBACK when anything fails."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = _drive(body(self))
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return result


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, in the calling thread."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a SQLite write transaction awaited something besides its connection")


class SqliteConnection(Connection):
    """An aiosqlite connection in autocommit mode (the store's reads).

    Each call is one trip to aiosqlite's thread (a statement and its rows together): the
    trips, not SQLite, are much of what a small statement costs.
    """

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(r) for r in await self.conn.execute_fetchall(sql, list(params))]

    async def fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self.conn.execute(sql, list(params)) as cursor:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in await cursor.fetchall()]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        # Rows changed, from the connection's running count (the schema has no triggers);
        # read between trips, while the connection's thread is idle.
        before = self.conn.total_changes
        await self.conn.execute_fetchall(sql, list(params))
        return self.conn.total_changes - before

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def executemany_count(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        before = self.conn.total_changes
        await self.conn.executemany(sql, rows)
        return self.conn.total_changes - before

    async def insert_new(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if rows:
            marks = ", ".join("?" * len(columns))
            await self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """``?`` placeholders to ``$1, $2, ...`` (reporting SQL has no ``?`` inside literals)."""
    counter = iter(range(1, 100_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    """Rows changed, from a PostgreSQL command status ("INSERT 0 3", "DELETE 5")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresConnection(Connection):
    """An asyncpg connection, or a pool that lends one per call (reads)."""

    dialect = POSTGRES

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # asyncpg.Connection or asyncpg.Pool: the same call surface

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(r) for r in await self.conn.fetch(to_postgres(sql), *params)]

    async def fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.conn.fetch(to_postgres(sql), *params)]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _rowcount(await self.conn.execute(to_postgres(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            await self.conn.executemany(to_postgres(sql), rows)

    async def executemany_count(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        return sum([await self.execute(sql, row) for row in rows])

    async def insert_new(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if rows:
            await self.conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def transaction(self, body: TransactionBody[T]) -> T:
        async with postgres_transaction(self.conn):
            return await body(self)


@contextlib.asynccontextmanager
async def postgres_transaction(conn: Any) -> AsyncIterator[None]:
    """A transaction on an asyncpg connection."""
    async with conn.transaction():
        yield


# Keys per statement in find_by_lane (SQLite's limit on host parameters is far above).
_KEYS_PER_STATEMENT = 500


async def find_by_lane(
    db: Connection,
    table: str,
    id_column: str,
    keys: Sequence[tuple[str, str, str]],
    columns: str = "",
) -> list[tuple]:
    """Rows of ``table`` with these (store, lane, id) keys, ``id_column`` being the id:
    ``columns`` of them (default the key itself).

    A lookup per lane on the table's (store, lane, id) index, joined by UNION ALL, one
    statement per few hundred keys.
    """
    select = columns or f"store_id, lane_id, {id_column}"
    by_lane: dict[tuple[str, str], list[str]] = {}
    for store_id, lane_id, key_id in keys:
        by_lane.setdefault((store_id, lane_id), []).append(key_id)
    found: list[tuple] = []
    parts: list[str] = []
    params: list[str] = []
    for (store_id, lane_id), ids in by_lane.items():
        for start in range(0, len(ids), _KEYS_PER_STATEMENT):
            part = ids[start : start + _KEYS_PER_STATEMENT]
            parts.append(
                f"SELECT {select} FROM {table} WHERE store_id = ? AND lane_id = ? "
                f"AND {id_column} IN ({','.join('?' * len(part))})"
            )
            params += [store_id, lane_id, *part]
            if len(params) > _KEYS_PER_STATEMENT:
                found += await db.fetchall(" UNION ALL ".join(parts), params)
                parts, params = [], []
    if parts:
        found += await db.fetchall(" UNION ALL ".join(parts), params)
    return found
