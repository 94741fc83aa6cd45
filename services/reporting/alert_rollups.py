"""Alert rollups kept on ingest: what each alert's latest revision adds to the reports.

An alert changes by revision (acknowledged, resolved, its disposition), so its figures are
not simply added once: when a newer revision replaces a stored one, the store subtracts
what the previous revision contributed and adds what the new one does, in the same
database transaction. ``contributions`` is the one definition of what an alert row adds;
ingest, the rebuild and the reports' partial hours at the ends of a range all use it.

``rollup_alert`` holds counts and money per store, lane, UTC hour (with the alert's local
day and hour), type, rule, category and currency; ``rollup_alert_store`` the same without
the lane, which reports read unless they group or filter by lane (a lane sees a few alerts
an hour, so the per-lane rollup is nearly as long as the alerts table).
``rollup_alert_time`` is a histogram of the times to acknowledge and to resolve per store,
UTC day, type and rule, in bands of an eighth of a doubling (``band``): a percentile finds
its band there, then reads the exact times of that one band from the alerts (indexes on
the two durations), so it stays exact while its cost stays flat. A transaction with
alerts confirmed as a loss is counted once, by its first confirmed alert (the row whose
``counts_transaction`` is 1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from lanesight.reporting.db import Connection
from lanesight.reporting.schema import DAY_MS, HOUR_MS

#: The alert columns a contribution is computed from, in this order.
ALERT_COLUMNS = (
    "store_id, lane_id, raised_ms, local_day, local_hour, type, rule, category, at_risk_minor, "
    "at_risk_currency, recovered_minor, recovered_currency, state, disposition, "
    "acknowledged_ms, resolved_ms, counts_transaction"
)
KEYS = (
    "store_id",
    "lane_id",
    "bucket_ms",
    "local_day",
    "local_hour",
    "type",
    "rule",
    "category",
    "currency",
)
COUNTERS = (
    "entries",
    "raised",
    "alerts",
    "resolved",
    "false_alerts",
    "corrected",
    "priced",
    "confirmed_transactions",
    "at_risk_minor",
    "recovered_minor",
)
TIME_KEYS = ("store_id", "bucket_ms", "type", "rule", "measure", "band")
#: Measure -> the SQL of its duration (as the alerts_*_time indexes spell it).
DURATIONS = {
    "acknowledge": "acknowledged_ms - raised_ms",
    "resolve": "resolved_ms - raised_ms",
}
_WIDTH = len(COUNTERS)

AlertKey = tuple[str, str, int, str, int, str, str, str, str]
TimeKey = tuple[str, int, str, str, str, int]

STORE_KEYS = tuple(k for k in KEYS if k != "lane_id")
StoreKey = tuple[str, int, str, int, str, str, str, str]


def _upsert(table: str, keys: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(keys + COUNTERS)}) "
        f"VALUES ({', '.join('?' * (len(keys) + _WIDTH))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS)
    )


_UPSERT = _upsert("rollup_alert", KEYS)
_STORE_UPSERT = _upsert("rollup_alert_store", STORE_KEYS)
_TIME_UPSERT = (
    f"INSERT INTO rollup_alert_time ({', '.join(TIME_KEYS)}, alerts) "
    f"VALUES ({', '.join('?' * (len(TIME_KEYS) + 1))}) "
    f"ON CONFLICT ({', '.join(TIME_KEYS)}) DO UPDATE SET "
    "alerts = rollup_alert_time.alerts + excluded.alerts"
)
#: An alert confirmed as a loss: resolved with any outcome but a false alert.
CONFIRMED = "state = 'resolved' AND disposition NOT IN ('false_alert', 'unspecified')"


def band(duration_ms: int) -> int:
    """The histogram band of a duration: 0..7 exactly, then eight bands per doubling."""
    if duration_ms < 8:
        return max(duration_ms, 0)
    bits = duration_ms.bit_length()
    return bits * 8 + ((duration_ms >> (bits - 4)) & 7)


def band_bounds(index: int) -> tuple[int, int]:
    """[low, high) of the durations in a band (``band``'s inverse); band 0 holds every
    duration below 1, as the reports clamp negative ones to 0."""
    if index < 8:
        return (-(2**62) if index == 0 else index), index + 1
    bits, eighth = divmod(index, 8)
    return (8 + eighth) << (bits - 4), (9 + eighth) << (bits - 4)


def is_confirmed(state: str, disposition: str) -> bool:
    """Python's twin of ``CONFIRMED``."""
    return state == "resolved" and disposition not in ("false_alert", "unspecified")


def contributions(
    row: Sequence[Any],
) -> tuple[list[tuple[AlertKey, list[int]]], list[TimeKey]]:
    """What one alert row (``ALERT_COLUMNS``) adds to ``rollup_alert`` and ``rollup_alert_time``.

    Alerts resolved as false alerts and withdrawn alerts put nothing at risk; withdrawn
    alerts are not counted as raised shrink alerts (but are, as alerts, in alert quality).
    A recovered amount in a currency other than the one at risk goes on its own row.
    """
    (store, lane, raised_ms, day, hour, kind, rule, category, risk, risk_cur, rec, rec_cur) = row[
        :12
    ]
    state, disposition, acked_ms, resolved_ms, counts_transaction = row[12:17]
    bucket = raised_ms - raised_ms % HOUR_MS
    withdrawn = state == "withdrawn"
    resolved = state == "resolved" and disposition != "unspecified"
    counts = [
        1,  # entries
        1,  # raised
        int(not withdrawn),
        int(resolved),
        int(resolved and disposition == "false_alert"),
        int(resolved and disposition == "shopper_corrected"),
        int(risk_cur is not None),
        int(bool(counts_transaction)),
        0 if disposition == "false_alert" or withdrawn else int(risk or 0),
        int(rec or 0) if rec_cur is not None and rec_cur == risk_cur else 0,
    ]
    base = (store, lane, bucket, day, int(hour), kind, rule, category)
    rows: list[tuple[AlertKey, list[int]]] = [((*base, risk_cur or ""), counts)]
    if rec_cur is not None and rec_cur != (risk_cur or ""):
        foreign = [0] * _WIDTH
        foreign[0], foreign[-1] = 1, int(rec or 0)
        rows.append(((*base, rec_cur), foreign))
    times: list[TimeKey] = []
    day_bucket = raised_ms - raised_ms % DAY_MS
    for measure, at in (("acknowledge", acked_ms), ("resolve", resolved_ms)):
        if at is not None:
            times.append((store, day_bucket, kind, rule, measure, band(at - raised_ms)))
    return rows, times


class AlertDelta:
    """Net changes to the alert rollups from a batch: rows added minus rows replaced."""

    def __init__(self) -> None:
        self.counts: dict[AlertKey, list[int]] = defaultdict(lambda: [0] * _WIDTH)
        self.store_counts: dict[StoreKey, list[int]] = defaultdict(lambda: [0] * _WIDTH)
        self.times: dict[TimeKey, int] = defaultdict(int)

    def add(self, rows: Iterable[Sequence[Any]], sign: int = 1) -> None:
        """Add (``sign`` 1) or subtract (-1) the contributions of alert rows."""
        for row in rows:
            counts, times = contributions(row)
            for key, values in counts:
                total = self.counts[key]
                store_total = self.store_counts[(key[0], *key[2:])]
                for index, value in enumerate(values):
                    total[index] += sign * value
                    store_total[index] += sign * value
            for time_key in times:
                self.times[time_key] += sign

    async def write(self, db: Connection) -> None:
        for upsert, table in ((_UPSERT, self.counts), (_STORE_UPSERT, self.store_counts)):
            rows = [(*k, *v) for k, v in sorted(table.items()) if any(v)]
            if rows:
                await db.executemany(upsert, rows)
        times = [(*k, n) for k, n in sorted(self.times.items()) if n]
        if times:
            await db.executemany(_TIME_UPSERT, times)


def first_confirmed(rows: Iterable[Sequence[Any]]) -> set[str]:
    """The alert ids that count their transaction: per (store, lane, transaction), the
    confirmed alert raised first (then the smallest id).

    ``rows``: (alert_id, store_id, lane_id, transaction_id, raised_ms, state, disposition, ...).
    """
    first: dict[tuple[str, str, str], tuple[int, str]] = {}
    for alert_id, store, lane, txn, raised_ms, state, disposition, *_ in rows:
        if not txn or not is_confirmed(state, disposition):
            continue
        key = (store, lane, txn)
        candidate = (raised_ms, alert_id)
        if key not in first or candidate < first[key]:
            first[key] = candidate
    return {alert_id for _, alert_id in first.values()}


_MARK_COLUMNS = (
    "alert_id, store_id, lane_id, transaction_id, raised_ms, state, disposition, counts_transaction"
)
_IN_CHUNK = 400


Stored = dict[str, tuple[int, str, tuple]]


async def stored_alerts(db: Connection, alert_ids: Sequence[str]) -> Stored:
    """(revision, transaction id, row of ``ALERT_COLUMNS``) of these alerts, by alert id."""
    found: Stored = {}
    for start in range(0, len(alert_ids), _IN_CHUNK):
        part = list(alert_ids[start : start + _IN_CHUNK])
        for row in await db.fetchall(
            f"SELECT alert_id, revision, transaction_id, {ALERT_COLUMNS} FROM alerts "
            f"WHERE alert_id IN ({','.join('?' * len(part))})",
            part,
        ):
            found[row[0]] = (int(row[1]), row[2], tuple(row[3:]))
    return found


async def _transaction_alerts(
    db: Connection, transactions: set[tuple[str, str, str]]
) -> list[tuple]:
    """(``_MARK_COLUMNS``) of every alert of these transactions (alerts_transaction index)."""
    by_lane: dict[tuple[str, str], list[str]] = defaultdict(list)
    for store, lane, txn in sorted(transactions):
        by_lane[(store, lane)].append(txn)
    out: list[tuple] = []
    for (store, lane), txns in by_lane.items():
        for start in range(0, len(txns), _IN_CHUNK):
            part = txns[start : start + _IN_CHUNK]
            out += await db.fetchall(
                f"SELECT {_MARK_COLUMNS} FROM alerts WHERE store_id = ? AND lane_id = ? "
                f"AND transaction_id IN ({','.join('?' * len(part))})",
                [store, lane, *part],
            )
    return out


async def apply_revisions(db: Connection, before: Stored, replaced: set[str]) -> None:
    """Bring the alert rollups up to date after the alerts ``replaced`` were written.

    ``before``: the stored (revision, row) of the batch's alerts before the write. The
    first-confirmed flags of every alert of the touched transactions are recomputed; each
    alert whose row changed has its previous contribution subtracted and its new one added.
    """
    if not replaced:
        return
    ids = sorted(replaced)
    after = await stored_alerts(db, ids)
    touched = {
        (found[2][0], found[2][1], found[1])
        for alert_id in ids
        for found in (before.get(alert_id), after.get(alert_id))
        if found is not None and found[1]
    }
    old = {alert_id: before[alert_id][2] for alert_id in ids if alert_id in before}
    marks = await _transaction_alerts(db, touched) if touched else []
    firsts = first_confirmed(marks)
    flips = [
        (int(row[0] in firsts), row[0]) for row in marks if int(row[-1]) != int(row[0] in firsts)
    ]
    others = [alert_id for _, alert_id in flips if alert_id not in replaced]
    for alert_id, (_, _, row) in (await stored_alerts(db, others)).items():
        old[alert_id] = row
    if flips:
        await db.executemany("UPDATE alerts SET counts_transaction = ? WHERE alert_id = ?", flips)
    new = await stored_alerts(db, sorted({*ids, *others})) if flips else after
    delta = AlertDelta()
    delta.add(old.values(), -1)
    delta.add((row for _, _, row in new.values()), 1)
    await delta.write(db)


async def rebuild_alert_rollups(db: Connection, page_size: int = 20_000) -> None:
    """Recompute the first-confirmed flags and both alert rollups from the alerts table.

    Used when a database is migrated to alert rollups, and by the benchmark after it
    loads alert rows directly. Runs inside the caller's transaction.
    """
    await db.execute("DELETE FROM rollup_alert")
    await db.execute("DELETE FROM rollup_alert_store")
    await db.execute("DELETE FROM rollup_alert_time")
    marks = await db.fetchall(
        f"SELECT {_MARK_COLUMNS} FROM alerts WHERE transaction_id != '' AND {CONFIRMED}"
    )
    await db.execute("UPDATE alerts SET counts_transaction = 0 WHERE counts_transaction != 0")
    firsts = sorted(first_confirmed(marks))
    if firsts:
        await db.executemany(
            "UPDATE alerts SET counts_transaction = 1 WHERE alert_id = ?", [(a,) for a in firsts]
        )
    delta = AlertDelta()
    last = ""
    while True:  # in pages: a chain's database may hold millions of alerts
        page = await db.fetchall(
            f"SELECT alert_id, {ALERT_COLUMNS} FROM alerts WHERE alert_id > ? "
            "ORDER BY alert_id LIMIT ?",
            [last, page_size],
        )
        delta.add(row[1:] for row in page)
        if len(page) < page_size:
            break
        last = page[-1][0]
    await delta.write(db)
