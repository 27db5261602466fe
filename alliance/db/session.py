"""Engine and session factory; SQLite gets WAL and a busy timeout, PostgreSQL is plain."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for the lock before failing."""


def database_url(configured: str, data_dir: Path) -> str:
    """The configured URL, or SQLite under the data directory by default."""
    if configured:
        return configured
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / 'alliance.db').resolve()}"


def json_loads(text: str | bytes) -> Any:
    """JSON columns as read: orjson (2-3x faster than `json`, which matters when a settlement
    run reads millions of rows' arguments), unless its result holds a float: orjson turns
    an integer beyond 64 bits into a float silently, so such a document (and one orjson
    refuses: NaN, infinities) is read by `json`, which gives exactly what was stored."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return value if _float_free(value) else json.loads(text)


def _float_free(value: Any) -> bool:
    # Plain loops, not all(...) over a generator: this runs once per row read.
    items = value.values() if type(value) is dict else value if type(value) is list else None
    if items is None:
        return type(value) is not float
    for item in items:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and not _float_free(item)):
            return False
    return True


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=32,
            max_overflow=64,
            json_deserializer=json_loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url, pool_size=20, max_overflow=20, pool_pre_ping=True, json_deserializer=json_loads
    )


SQLITE_BEGIN_OPTION = "sqlite_begin"
"""Execution option naming the BEGIN mode: DEFERRED for reads, IMMEDIATE for units of work."""


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    # pysqlite's own implicit transactions are off; `_sqlite_begin` opens each one: readers
    # get a deferred (WAL snapshot) transaction that never blocks, writers an immediate one.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One write transaction: committed if the block succeeds, rolled back if it raises.

    On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so two writers queue on
    the busy timeout instead of failing when one upgrades a read snapshot. Keep chain calls
    and other slow work outside: the lock is held until the block ends.
    """
    engine: Engine = factory.kw["bind"]
    if engine.dialect.name != "sqlite":
        with factory() as session, session.begin():
            yield session
        return
    writer = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    # SQLite's busy handler retries with growing sleeps, so under many concurrent writers
    # some starve past the timeout. Writers of this process queue on a lock instead and
    # take turns; other processes still meet the busy timeout.
    with _writer_lock(engine), factory(bind=writer) as session, session.begin():
        yield session


class FifoLock:
    """A lock granted in arrival order. `threading.Lock` is not fair: under a stream of
    request threads, a submitter could wait for it indefinitely."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._held = False

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()

    def __exit__(self, *exc_info: object) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes directly to the next waiter
            else:
                self._held = False


_WRITER_LOCKS: dict[str, FifoLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> FifoLock:
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(str(engine.url), FifoLock())
