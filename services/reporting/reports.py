"""The reports: shrink, alert quality, lane health, POS exceptions, and the alert list."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import replace
from datetime import date
from typing import Any

from lanesight.reporting import alert_rollups
from lanesight.reporting.alert_rollups import ALERT_COLUMNS, contributions
from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.counters import (
    LANE_COUNTERS,
    OPERATOR_COUNTERS,
    clipped_unhealthy_ms,
    item_detail_part,
    lane_detail_parts,
    operator_detail_parts,
    rollup_part,
    unhealthy_intervals,
)
from lanesight.reporting.db import Connection, find_by_lane
from lanesight.reporting.localtime import StoreZones
from lanesight.reporting.model import (
    ALERT_STATES,
    POS_MEASURES,
    SHRINK_DIMENSIONS,
    AlertQualityRow,
    AlertRecord,
    InvalidArgument,
    KeyedItem,
    LaneHealthRow,
    Money,
    PageInfo,
    PageRequest,
    PosExceptionRow,
    ReportFilter,
    ShrinkRow,
    StoreComparisonRow,
    StorePeriod,
)
from lanesight.reporting.paging import decode_token, encode_token, fingerprint, page_size, paginate
from lanesight.reporting.schema import DAY_MS, HOUR_MS

# SQL for each shrink dimension over the alerts table ("hour_of_day" is the dialect's).
_SHRINK_KEYS = {
    "store": "store_id",
    "lane": "store_id || '/' || lane_id",
    "category": "category",
    "alert_type": "type",
    "day": "local_day",
}
# The same keys over rollup_alert's key tuple (alert_rollups.KEYS), for the partial hours
# at a range's ends, which are summed in Python from the alert rows.
_ALERT_KEY_OF = {
    "store": lambda k: k[0],
    "lane": lambda k: f"{k[0]}/{k[1]}",
    "hour_of_day": lambda k: f"{k[4]:02d}",
    "category": lambda k: k[7],
    "alert_type": lambda k: k[5],
    "day": lambda k: k[3],
    "rule": lambda k: k[6],
    "currency": lambda k: k[8],
}
_ALERT_INDEX = {c: i for i, c in enumerate(alert_rollups.COUNTERS)}
# How many outlier rows a store needs before a z-score means anything.
_MIN_ROWS_FOR_NORM = 3


class Reports:
    """Runs the reports over the store's read connection."""

    def __init__(self, reader: Connection, config: ReportingConfig) -> None:
        self.db = reader
        self.config = config
        self.zones = StoreZones(config.timezone, config.store_zones())
        self.local_time = self.zones.default
        self._shrink_keys = {
            **_SHRINK_KEYS,
            "hour_of_day": reader.dialect.two_digits("local_hour"),
            "rule": "rule",
            "currency": "currency",
        }

    async def _all(self, sql: str, params: list[Any]) -> list[Any]:
        return await self.db.fetchall(sql, params)

    async def _purged_before_ms(self) -> int | None:
        """Detail rows before this instant were deleted by retention (rollups remain)."""
        row = await self.db.fetchone(
            "SELECT value FROM meta WHERE key = 'detail_purged_before_day'", []
        )
        return self.local_time.day_start_ms(row[0]) if row else None

    async def _split(
        self, f: ReportFilter, bucket: int
    ) -> tuple[tuple[int | None, int | None] | None, list[tuple[int | None, int | None]]]:
        """Where a range reads rollups and where detail: (the bucket range wholly inside
        the filter's range, or None) and the detail ranges at its ends.

        Where detail was purged, a partly covered bucket is read whole from the rollups.
        """
        start, end = f.start_ms, f.end_ms
        purged = await self._purged_before_ms() if start is not None or end is not None else None
        low = high = None
        if start is not None:
            low = -(-start // bucket) * bucket
            if purged is not None and start < purged:
                low = start - start % bucket
        if end is not None:
            high = end - end % bucket
            if purged is not None and end < purged:
                high = -(-end // bucket) * bucket
        if low is not None and high is not None and low >= high:
            return None, [(start, end)]
        detail: list[tuple[int | None, int | None]] = []
        if start is not None and low is not None and start < low:
            detail.append((start, low))
        if end is not None and high is not None and high < end:
            detail.append((high, end))
        return (low, high), detail

    @staticmethod
    def _ids_where(f: ReportFilter, lanes: bool = True) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (("store_id", f.store_ids), ("lane_id", f.lane_ids if lanes else ())):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        return clauses, params

    def _bucket_where(
        self, f: ReportFilter, span: tuple[int | None, int | None], lanes: bool = True
    ) -> tuple[str, list[Any]]:
        clauses, params = self._ids_where(f, lanes)
        low, high = span
        if low is not None:
            clauses.insert(0, "bucket_ms >= ?")
            params.insert(0, low)
        if high is not None:
            clauses.insert(1 if low is not None else 0, "bucket_ms < ?")
            params.insert(1 if low is not None else 0, high)
        return " AND ".join(clauses) or "1 = 1", params

    def _ranges_where(
        self, f: ReportFilter, ranges: list[tuple[int | None, int | None]], column: str = "time_ms"
    ) -> tuple[str, list[Any]]:
        ors, params = [], []
        for start, end in ranges:
            parts = []
            if start is not None:
                parts.append(f"{column} >= ?")
                params.append(start)
            if end is not None:
                parts.append(f"{column} < ?")
                params.append(end)
            ors.append("(" + (" AND ".join(parts) or "1 = 1") + ")")
        clauses, id_params = self._ids_where(f)
        return " AND ".join(["(" + " OR ".join(ors) + ")", *clauses]), params + id_params

    async def _counters(
        self,
        f: ReportFilter,
        keys: str,
        table: str,
        counters: tuple[str, ...],
        detail_parts,
        order: bool = False,
    ) -> list[Any]:
        """Counters per ``keys``: rollup buckets inside the range plus detail at its ends."""
        span, edges = await self._split(f, HOUR_MS)
        parts: list[str] = []
        params: list[Any] = []
        if span is not None:
            where, bparams = self._bucket_where(f, span)
            parts.append(rollup_part(table, counters, keys, where))
            params += bparams
        if edges:
            where, dparams = self._ranges_where(f, edges)
            detail = detail_parts(keys, where)
            parts += detail
            params += dparams * len(detail)
        sums = ", ".join(f"SUM({c})" for c in counters)
        ordering = f" ORDER BY {keys}" if order else ""
        return await self._all(
            f"SELECT {keys}, {sums} FROM ({' UNION ALL '.join(parts)}) AS u "
            f"GROUP BY {keys}{ordering}",
            params,
        )

    # --- alert rollups -------------------------------------------------------------------

    @staticmethod
    def _alert_split(
        f: ReportFilter, bucket: int = HOUR_MS
    ) -> tuple[tuple[int | None, int | None] | None, list[tuple[int | None, int | None]]]:
        """The buckets wholly inside the range (read from the alert rollups) and the
        partial buckets at its ends (read from the alert rows, which are never purged)."""
        start, end = f.start_ms, f.end_ms
        low = None if start is None else -(-start // bucket) * bucket
        high = None if end is None else end - end % bucket
        if low is not None and high is not None and low >= high:
            return None, [(start, end)]
        edges: list[tuple[int | None, int | None]] = []
        if start is not None and low is not None and start < low:
            edges.append((start, low))
        if end is not None and high is not None and high < end:
            edges.append((high, end))
        return (low, high), edges

    def _types_where(self, f: ReportFilter, where: str, params: list[Any]) -> str:
        if f.alert_types:
            params.extend(f.alert_types)
            return f"{where} AND type IN ({','.join('?' * len(f.alert_types))})"
        return where

    async def _edge_alerts(self, f: ReportFilter, edges) -> list[tuple]:
        where, params = self._ranges_where(f, edges, "raised_ms")
        where = self._types_where(f, where, params)
        return await self._all(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {where}", params)

    async def alert_counts(self, f: ReportFilter, keys: list[str]) -> dict[tuple, list[int]]:
        """The alert counters (alert_rollups.COUNTERS) per group of ``keys`` (shrink
        dimensions, "rule" or "currency"): rollup hours inside the range, alert rows at
        its ends. Groups without alerts are left out."""
        span, edges = self._alert_split(f)
        out: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(alert_rollups.COUNTERS))
        if span is not None:
            where, params = self._bucket_where(f, span)
            where = self._types_where(f, where, params)
            select = ", ".join(f"{self._shrink_keys[k]} AS k{i}" for i, k in enumerate(keys))
            group = ", ".join(f"k{i}" for i in range(len(keys)))
            sums = ", ".join(f"SUM({c})" for c in alert_rollups.COUNTERS)
            # The rollup without lanes is far shorter: read it unless lanes matter.
            table = "rollup_alert" if f.lane_ids or "lane" in keys else "rollup_alert_store"
            for row in await self._all(
                f"SELECT {select}, {sums} FROM {table} WHERE {where} "
                f"GROUP BY {group} HAVING SUM(entries) > 0",
                params,
            ):
                out[tuple(row[: len(keys)])] = [int(v or 0) for v in row[len(keys) :]]
        if edges:
            key_of = [_ALERT_KEY_OF[k] for k in keys]
            for alert in await self._edge_alerts(f, edges):
                for key, values in contributions(alert)[0]:
                    total = out[tuple(fn(key) for fn in key_of)]
                    for index, value in enumerate(values):
                        total[index] += value
        return {k: v for k, v in out.items() if v[0] > 0}

    async def alert_percentiles(
        self, f: ReportFilter
    ) -> dict[tuple[str, str, str], tuple[int, int]]:
        """Per (type, rule, measure): p50 and p95 (nearest rank) of the exact times to
        acknowledge and to resolve.

        Without a lane filter the banded histogram (rollup_alert_time for whole UTC days,
        alert rows for the partial days at the ends) says in which band each percentile
        lies and how far into it; one indexed query then reads that band's times. With a
        lane filter (the histogram has no lanes) the times are read from the alert rows.
        """
        if f.lane_ids:
            where, params = self._alert_where(f)
            values: dict[tuple[str, str, str], list[int]] = defaultdict(list)
            durations = ", ".join(alert_rollups.DURATIONS.values())
            for kind, rule, *times in await self._all(
                f"SELECT type, rule, {durations} FROM alerts WHERE {where}", params
            ):
                for measure, value in zip(alert_rollups.DURATIONS, times, strict=True):
                    if value is not None:
                        values[(kind, rule, measure)].append(max(0, int(value)))
            return {k: (percentile(v, 50), percentile(v, 95)) for k, v in values.items()}
        span, edges = self._alert_split(f, DAY_MS)
        bands: dict[tuple[str, str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        if span is not None:
            where, params = self._bucket_where(f, span, lanes=False)
            where = self._types_where(f, where, params)
            for kind, rule, measure, index, n in await self._all(
                "SELECT type, rule, measure, band, SUM(alerts) FROM rollup_alert_time "
                f"WHERE {where} GROUP BY type, rule, measure, band HAVING SUM(alerts) > 0",
                params,
            ):
                bands[(kind, rule, measure)][int(index)] += int(n)
        if edges:
            for alert in await self._edge_alerts(f, edges):
                for _, _, kind, rule, measure, index in contributions(alert)[1]:
                    bands[(kind, rule, measure)][index] += 1
        out = {}
        for key, counts in bands.items():
            out[key] = (
                await self._band_percentile(f, key, counts, 50),
                await self._band_percentile(f, key, counts, 95),
            )
        return out

    async def _band_percentile(
        self, f: ReportFilter, key: tuple[str, str, str], counts: dict[int, int], pct: int
    ) -> int:
        total = sum(counts.values())
        if not total:
            return 0
        rank = max(1, math.ceil(pct / 100 * total))
        below = 0
        for index in sorted(counts):
            if below + counts[index] >= rank:
                break
            below += counts[index]
        low, high = alert_rollups.band_bounds(index)
        kind, rule, measure = key
        duration = alert_rollups.DURATIONS[measure]
        where, params = self._detail_where(f, "raised_ms")
        row = await self.db.fetchone(
            f"SELECT {duration} FROM alerts WHERE type = ? AND rule = ? AND {duration} >= ? "
            f"AND {duration} < ? AND {where} ORDER BY {duration} LIMIT 1 OFFSET ?",
            [kind, rule, low, high, *params, rank - below - 1],
        )
        if row is None:
            # A revision committed between the two reads moved a time out of its band:
            # rank the group's times from the rows themselves.
            rows = await self._all(
                f"SELECT {duration} FROM alerts WHERE type = ? AND rule = ? "
                f"AND {duration} IS NOT NULL AND {where}",
                [kind, rule, *params],
            )
            return percentile([max(0, int(r[0])) for r in rows], pct)
        return max(0, int(row[0]))

    def _paginate(self, rows, page: PageRequest, query: str):
        return paginate(rows, page, query, self.config.default_page_size, self.config.max_page_size)

    # --- filters -------------------------------------------------------------------------

    @staticmethod
    def _detail_where(f: ReportFilter, time_col: str = "time_ms") -> tuple[str, list[Any]]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if f.start_ms is not None:
            clauses.append(f"{time_col} >= ?")
            params.append(f.start_ms)
        if f.end_ms is not None:
            clauses.append(f"{time_col} < ?")
            params.append(f.end_ms)
        for column, values in (("store_id", f.store_ids), ("lane_id", f.lane_ids)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        return " AND ".join(clauses), params

    def _alert_where(self, f: ReportFilter) -> tuple[str, list[Any]]:
        where, params = self._detail_where(f, "raised_ms")
        if f.alert_types:
            where += f" AND type IN ({','.join('?' * len(f.alert_types))})"
            params.extend(f.alert_types)
        return where, params

    async def transactions(self, f: ReportFilter) -> int:
        """Transactions in the filter's stores, lanes and range."""
        rows = await self._counters(
            f, "store_id", "rollup_lane", ("transactions",), _transaction_parts
        )
        return sum(int(r[1] or 0) for r in rows)

    # --- shrink --------------------------------------------------------------------------

    async def shrink(
        self, f: ReportFilter, group_by: list[str], page: PageRequest
    ) -> tuple[list[ShrinkRow], PageInfo]:
        """Alerts, amount at risk and amount recovered per group and currency.

        Alerts resolved as false alerts count as alerts but put nothing at risk.
        """
        f.validate()
        for index, dimension in enumerate(group_by):
            if dimension not in SHRINK_DIMENSIONS:
                raise InvalidArgument("group_by", f"unknown dimension {dimension!r}")
            if dimension in group_by[:index]:
                raise InvalidArgument("group_by", f"dimension {dimension!r} is listed twice")
        query = fingerprint("shrink", f, tuple(group_by))
        page_size(page, self.config.default_page_size, self.config.max_page_size)
        return self._paginate(await self.shrink_rows(f, group_by), page, query)

    async def shrink_rows(self, f: ReportFilter, group_by: list[str]) -> list[ShrinkRow]:
        """Every row of the shrink report (validated dimensions; no paging)."""
        alerts, at_risk, recovered = (
            _ALERT_INDEX[c] for c in ("alerts", "at_risk_minor", "recovered_minor")
        )
        counts = await self.alert_counts(f, [*group_by, "currency"])
        rows = [
            ShrinkRow(
                keys=[str(v) if v is not None else "" for v in key[:-1]],
                currency=key[-1],
                alerts=values[alerts],
                at_risk_minor=values[at_risk],
                recovered_minor=values[recovered],
            )
            for key, values in sorted(counts.items(), key=lambda item: _sort_key(item[0]))
        ]
        return _merge_moneyless(rows)

    # --- alert quality -------------------------------------------------------------------

    async def alert_quality(
        self, f: ReportFilter, page: PageRequest
    ) -> tuple[list[AlertQualityRow], int, PageInfo]:
        """Per rule: precision from dispositions, false alerts per 100 transactions, timing."""
        f.validate()
        query = fingerprint("alert_quality", f)
        page_size(page, self.config.default_page_size, self.config.max_page_size)
        counts = await self.alert_counts(f, ["alert_type", "rule"])
        times = await self.alert_percentiles(f)
        transactions = await self.transactions(replace(f, alert_types=()))
        raised, resolved_i, false_i, corrected_i = (
            _ALERT_INDEX[c] for c in ("raised", "resolved", "false_alerts", "corrected")
        )
        rows = []
        for (alert_type, rule), values in sorted(counts.items(), key=lambda i: _sort_key(i[0])):
            resolved, false = values[resolved_i], values[false_i]
            ack = times.get((alert_type, rule, "acknowledge"), (0, 0))
            res = times.get((alert_type, rule, "resolve"), (0, 0))
            rows.append(
                AlertQualityRow(
                    type=alert_type,
                    rule=rule,
                    alerts=values[raised],
                    resolved=resolved,
                    precision=(resolved - false) / resolved if resolved else 0.0,
                    false_alerts_per_100_transactions=(
                        100.0 * false / transactions if transactions else 0.0
                    ),
                    self_corrected_share=values[corrected_i] / resolved if resolved else 0.0,
                    acknowledge_p50_ms=ack[0],
                    acknowledge_p95_ms=ack[1],
                    resolve_p50_ms=res[0],
                    resolve_p95_ms=res[1],
                )
            )
        chunk, info = self._paginate(rows, page, query)
        return chunk, transactions, info

    # --- lane health ---------------------------------------------------------------------

    async def lane_health(
        self, f: ReportFilter, page: PageRequest
    ) -> tuple[list[LaneHealthRow], list[KeyedItem], PageInfo]:
        """The checkout-basics audit per lane, and the items most often keyed."""
        f.validate()
        query = fingerprint("lane_health", f)
        page_size(page, self.config.default_page_size, self.config.max_page_size)
        rows = await self.lane_rows(f)
        chunk, info = self._paginate(rows, page, query)
        return chunk, await self._keyed_items(f), info

    async def lane_rows(self, f: ReportFilter) -> list[LaneHealthRow]:
        """Every lane's health row (no paging, no keyed items)."""
        raw = await self._counters(
            f, "store_id, lane_id", "rollup_lane", LANE_COUNTERS, lane_detail_parts
        )
        lanes: dict[tuple[str, str], LaneHealthRow] = {}
        for r in raw:
            lanes[(r[0], r[1])] = LaneHealthRow(
                r[0], r[1], **{c: int(v or 0) for c, v in zip(LANE_COUNTERS, r[2:], strict=True)}
            )
        for lane, ms in (await self._camera_unhealthy_ms(f)).items():
            lanes.setdefault(lane, LaneHealthRow(*lane)).camera_unhealthy_ms += ms
        for row in lanes.values():
            _score(row)
        return [lanes[k] for k in sorted(lanes)]

    async def _camera_unhealthy_ms(self, f: ReportFilter) -> dict[tuple[str, str], int]:
        where, params = self._detail_where(replace(f, start_ms=None))
        changes = await self._all(
            "SELECT store_id, lane_id, camera_id, time_ms, healthy FROM camera_changes "
            f"WHERE {where} ORDER BY store_id, lane_id, camera_id, time_ms",
            params,
        )
        clock = {
            (s, ln): t
            for s, ln, t in await self._all(
                "SELECT store_id, lane_id, last_time_ms FROM lane_clock", []
            )
        }
        intervals = unhealthy_intervals(changes, lambda s, ln: clock.get((s, ln), 0))
        totals = clipped_unhealthy_ms(intervals, f.start_ms, f.end_ms)
        # Camera time of purged days, kept in the rollups by retention.
        span, _ = await self._split(f, HOUR_MS)
        if span is not None:
            bwhere, bparams = self._bucket_where(f, span)
            for store, lane, ms in await self._all(
                f"SELECT store_id, lane_id, SUM(camera_unhealthy_ms) FROM rollup_lane "
                f"WHERE {bwhere} GROUP BY store_id, lane_id HAVING SUM(camera_unhealthy_ms) > 0",
                bparams,
            ):
                totals[(store, lane)] = totals.get((store, lane), 0) + int(ms)
        return totals

    async def _keyed_items(self, f: ReportFilter) -> list[KeyedItem]:
        # The item rollup is per store and day: a lane filter reads the detail rows.
        span, edges = (
            (None, [(f.start_ms, f.end_ms)]) if f.lane_ids else await self._split(f, DAY_MS)
        )
        parts: list[str] = []
        params: list[Any] = []
        if span is not None:
            where, bparams = self._bucket_where(f, span, lanes=False)
            parts.append(
                f"SELECT item_code, description, entries, keyed FROM rollup_item WHERE {where}"
            )
            params += bparams
        if edges:
            where, dparams = self._ranges_where(f, edges)
            parts.append(item_detail_part("", where))
            params += dparams
        sql = f"""
        SELECT item_code, MAX(description), SUM(entries), SUM(keyed) FROM (
          {" UNION ALL ".join(parts)}
        ) AS u GROUP BY item_code HAVING SUM(keyed) > 0
        ORDER BY SUM(keyed) DESC, SUM(keyed) * 1.0 / SUM(entries) DESC, item_code LIMIT ?
        """
        raw = await self._all(sql, params + [self.config.keyed_items_limit])
        return [KeyedItem(r[0], r[1] or "", int(r[2]), int(r[3])) for r in raw]

    # --- POS exceptions ------------------------------------------------------------------

    async def pos_exceptions(
        self, f: ReportFilter, page: PageRequest, outlier_z: float = 0.0
    ) -> tuple[list[PosExceptionRow], PageInfo]:
        """POS exceptions per operator and lane, with outliers against the store's norm.

        The norm of a measure is the mean and standard deviation of its per-transaction rate
        over every operator-lane row of the store in the range (all lanes, whatever the
        lane filter); a row is an outlier on a measure when its z-score reaches outlier_z.
        """
        f.validate()
        if not math.isfinite(outlier_z) or outlier_z < 0:
            raise InvalidArgument("outlier_z", "must be a non-negative number")
        threshold = outlier_z or 2.0
        query = fingerprint("pos_exceptions", f, threshold)
        page_size(page, self.config.default_page_size, self.config.max_page_size)
        store_wide = replace(f, lane_ids=())
        raw = await self._counters(
            store_wide,
            "store_id, lane_id, operator_id",
            "rollup_operator",
            OPERATOR_COUNTERS,
            operator_detail_parts,
            order=True,
        )
        rows = [
            PosExceptionRow(
                r[0],
                r[1],
                r[2],
                # The keys are PosExceptionRow's int counters, which mypy cannot tell apart.
                **{c: int(v or 0) for c, v in zip(OPERATOR_COUNTERS, r[3:], strict=True)},  # type: ignore[arg-type]
            )
            for r in raw
        ]
        by_store: dict[str, list[PosExceptionRow]] = defaultdict(list)
        for row in rows:
            by_store[row.store_id].append(row)
        for store_rows in by_store.values():
            mark_outliers(store_rows, threshold)
        if f.lane_ids:
            rows = [r for r in rows if r.lane_id in f.lane_ids]
        return self._paginate(rows, page, query)

    # --- chain ---------------------------------------------------------------------------

    async def store_comparison(
        self,
        f: ReportFilter,
        region: str = "",
        local_days: tuple[str, str] | None = None,
    ) -> list[StoreComparisonRow]:
        """The stores of a region (or all) side by side, this period and the previous one.

        ``local_days`` ("2024-03-01", "2024-04-01"): the period in each store's own local
        days (first included, last excluded), whatever its time zone; otherwise the filter's
        range. The previous period is as long and ends where this one starts (none when
        the period is open-ended).
        """
        f.validate()
        if local_days is not None:
            for day in local_days:
                try:
                    date.fromisoformat(day)
                except ValueError:
                    raise InvalidArgument("local_days", f"not a day: {day!r}") from None
            if local_days[1] <= local_days[0]:
                raise InvalidArgument("local_days", "the last day is not after the first")
        stores = await self._chain_stores(f, region)
        periods: dict[str, tuple[tuple[int | None, int | None], tuple[int, int] | None]] = {}
        for store in stores:
            if local_days is not None:
                zone = self.zones.of(store)
                first, last = (date.fromisoformat(d) for d in local_days)
                before = (first - (last - first)).isoformat()
                start, end = zone.day_start_ms(local_days[0]), zone.day_start_ms(local_days[1])
                periods[store] = ((start, end), (zone.day_start_ms(before), start))
            elif f.start_ms is not None and f.end_ms is not None:
                length = f.end_ms - f.start_ms
                periods[store] = ((f.start_ms, f.end_ms), (f.start_ms - length, f.start_ms))
            else:
                periods[store] = ((f.start_ms, f.end_ms), None)
        current = await self._store_periods(f, {s: p[0] for s, p in periods.items()})
        previous = await self._store_periods(
            f, {s: p[1] for s, p in periods.items() if p[1] is not None}
        )
        rows = []
        for store in stores:
            info = self.config.stores.get(store)
            rows.append(
                StoreComparisonRow(
                    store_id=store,
                    name=self.config.store_name(store),
                    region=info.region if info else "",
                    timezone=(info.timezone if info and info.timezone else self.config.timezone),
                    current=current[store],
                    previous=previous.get(store),
                )
            )
        return rows

    async def _chain_stores(self, f: ReportFilter, region: str) -> list[str]:
        seen = {
            s
            for (s,) in await self._all(
                # Both read an index only (lane_clock's key, alerts_lane).
                "SELECT DISTINCT store_id FROM lane_clock UNION SELECT DISTINCT store_id FROM alerts",
                [],
            )
        }
        stores = seen | set(self.config.stores)
        if region:
            stores = {
                s for s in stores if (info := self.config.stores.get(s)) and info.region == region
            }
        if f.store_ids:
            stores &= set(f.store_ids)
        return sorted(stores)

    async def _store_periods(
        self, f: ReportFilter, ranges: dict[str, tuple[int | None, int | None]]
    ) -> dict[str, StorePeriod]:
        """Each store's figures over its own range (stores sharing a range share queries)."""
        by_range: dict[tuple[int | None, int | None], list[str]] = defaultdict(list)
        for store, span in ranges.items():
            by_range[span].append(store)
        out: dict[str, StorePeriod] = {}
        for (start, end), stores in by_range.items():
            scoped = replace(f, start_ms=start, end_ms=end, store_ids=tuple(stores), alert_types=())
            for store in stores:
                out[store] = StorePeriod(start, end)
            scores: dict[str, list[float]] = defaultdict(list)
            for row in await self.lane_rows(scoped):
                period = out[row.store_id]
                period.transactions += row.transactions
                period.items_entered += row.items_entered
                period.items_keyed += row.items_keyed
                period.lanes += 1
                scores[row.store_id].append(row.health_score)
            await self._alert_figures(scoped, out)
            for store in stores:
                period = out[store]
                if scores[store]:
                    period.health_score = round(sum(scores[store]) / len(scores[store]), 1)
                _rate_period(period)
        return out

    async def _alert_figures(self, f: ReportFilter, out: dict[str, StorePeriod]) -> None:
        index = _ALERT_INDEX
        amounts: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        for (store, currency), values in (
            await self.alert_counts(f, ["store", "currency"])
        ).items():
            period = out[store]
            period.alerts += values[index["alerts"]]
            period.resolved += values[index["resolved"]]
            period.false_alerts += values[index["false_alerts"]]
            period.confirmed_transactions += values[index["confirmed_transactions"]]
            if values[index["priced"]]:
                amounts[store].append(
                    (currency, values[index["priced"]], values[index["at_risk_minor"]])
                )
        for store, options in amounts.items():
            # A store reports in its own currency: the one most of its alerts carry.
            currency, _, minor = max(options, key=lambda o: (o[1], o[2], o[0]))
            out[store].currency, out[store].at_risk_minor = currency, minor

    # --- alerts --------------------------------------------------------------------------

    async def list_alerts(
        self, f: ReportFilter, state: str, page: PageRequest
    ) -> tuple[list[AlertRecord], PageInfo]:
        """Alerts at their latest revision, newest first, with keyset paging."""
        f.validate()
        if state not in ("unspecified", *ALERT_STATES):
            raise InvalidArgument("state", f"unknown alert state {state!r}")
        query = fingerprint("alerts", f, state)
        size = page_size(page, self.config.default_page_size, self.config.max_page_size)
        where, params = self._alert_where(f)
        if state != "unspecified":
            where += " AND state = ?"
            params.append(state)
        total = (await self._all(f"SELECT COUNT(*) FROM alerts WHERE {where}", params))[0][0]
        keyset, keyset_params = "", []
        if page.page_token:
            position = decode_token(page.page_token, query)
            after_ms, after_id = position.get("t"), position.get("id")
            if not isinstance(after_ms, int) or not isinstance(after_id, str):
                raise InvalidArgument("page.page_token", "not a page token this server issued")
            keyset = " AND (raised_ms < ? OR (raised_ms = ? AND alert_id < ?))"
            keyset_params = [after_ms, after_ms, after_id]
        raw = await self.db.fetch_dicts(
            f"SELECT * FROM alerts WHERE {where}{keyset} "
            "ORDER BY raised_ms DESC, alert_id DESC LIMIT ?",
            params + keyset_params + [size + 1],
        )
        alerts = [_alert_from_row(r) for r in raw[:size]]
        await self._attach_evidence(alerts)
        token = ""
        if len(raw) > size:
            last = alerts[-1]
            token = encode_token(query, {"t": last.raised_ms, "id": last.alert_id})
        return alerts, PageInfo(next_page_token=token, total_size=int(total))

    async def _attach_evidence(self, alerts: list[AlertRecord]) -> None:
        by_id = {a.alert_id: a for a in alerts}
        if not by_id:
            return
        marks = ",".join("?" * len(by_id))
        for alert_id, event_id in await self._all(
            f"SELECT alert_id, event_id FROM alert_evidence WHERE alert_id IN ({marks}) "
            "ORDER BY alert_id, event_id",
            list(by_id),
        ):
            by_id[alert_id].supporting_event_ids.append(event_id)

    async def evidence_events(self, alerts: list[AlertRecord]) -> dict[str, tuple[str, int]]:
        """Kind and lane time of the alerts' evidence events still kept (raw events are
        purged), looked up on each alert's lane."""
        keys = sorted({(a.store_id, a.lane_id, e) for a in alerts for e in a.supporting_event_ids})
        return {
            event_id: (kind, int(time_ms))
            for event_id, kind, time_ms in await find_by_lane(
                self.db, "events", "event_id", keys, "event_id, kind, time_ms"
            )
        }

    async def alert_history(self, alert_id: str) -> list[tuple[str, str, str, int]]:
        """The state changes of an alert: (change, value, actor, at_ms), oldest first."""
        return [
            (c, v, a, int(t))
            for c, v, a, t in await self._all(
                "SELECT change, value, actor, at_ms FROM alert_changes WHERE alert_id = ? "
                "ORDER BY at_ms, CASE change WHEN 'raised' THEN 0 WHEN 'acknowledged' THEN 1 "
                "WHEN 'resolved' THEN 2 ELSE 3 END",
                [alert_id],
            )
        ]


def _transaction_parts(keys: str, where: str) -> list[str]:
    return [
        f"SELECT {keys}, COUNT(*) AS transactions FROM transactions WHERE {where} GROUP BY {keys}"
    ]


def _rate_period(p: StorePeriod) -> None:
    """The rates of a store's period; None where the denominator is empty."""
    if p.transactions:
        p.shrink_per_1000_minor = 1000 * p.at_risk_minor / p.transactions
    if p.resolved:
        p.precision = (p.resolved - p.false_alerts) / p.resolved
    honest = p.transactions - p.confirmed_transactions
    if honest > 0:
        p.false_alerts_per_100_honest = 100 * p.false_alerts / honest
    if p.items_entered:
        p.keyed_entry_rate = p.items_keyed / p.items_entered


def _sort_key(key: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in key)


def percentile(values: list[int], pct: int) -> int:
    """The nearest-rank percentile (the smallest value with pct% of values at or below it)."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return int(ordered[rank - 1])


def _score(row: LaneHealthRow) -> None:
    """Rates and the 0..100 health score (see docs/reporting.md for the weights)."""
    row.scanner_first_pass_read_rate = (
        row.first_pass_scans / row.items_scanned if row.items_scanned else 1.0
    )
    row.keyed_entry_rate = row.items_keyed / row.items_entered if row.items_entered else 0.0

    def remaining(count: float, full: float) -> float:
        return max(0.0, 1.0 - count / full)

    row.health_score = round(
        35 * row.scanner_first_pass_read_rate
        + 20 * (1 - row.keyed_entry_rate)
        + 15 * remaining(row.scale_not_zeroed + row.scale_over_capacity, 10)
        + 10 * remaining(row.printer_paper_out + row.printer_cover_open, 10)
        + 10 * remaining(row.camera_unhealthy_ms / 1000, 3600)
        + 10 * remaining(row.device_disconnections, 10),
        1,
    )


def mark_outliers(rows: list[PosExceptionRow], threshold: float) -> None:
    """Name, on each row, the measures whose per-transaction rate is an outlier in ``rows``."""
    if len(rows) < _MIN_ROWS_FOR_NORM:
        return
    for measure in POS_MEASURES:
        rates = [getattr(r, measure) / max(r.transactions, 1) for r in rows]
        mean = statistics.fmean(rates)
        spread = statistics.pstdev(rates)
        if spread == 0:
            continue
        for row, rate in zip(rows, rates, strict=True):
            if getattr(row, measure) > 0 and (rate - mean) / spread >= threshold:
                row.outliers.append(measure)


def _merge_moneyless(rows: list[ShrinkRow]) -> list[ShrinkRow]:
    """Fold a group's alerts without money into its only currency row, when it has one."""
    by_keys: dict[tuple[str, ...], list[ShrinkRow]] = defaultdict(list)
    for row in rows:
        by_keys[tuple(row.keys)].append(row)
    merged = []
    for group in by_keys.values():
        blank = [r for r in group if r.currency == ""]
        priced = [r for r in group if r.currency != ""]
        if blank and len(priced) == 1:
            priced[0].alerts += blank[0].alerts
            merged.extend(priced)
        else:
            merged.extend(group)
    return merged


def _alert_from_row(r: dict[str, Any]) -> AlertRecord:
    def money(amount: int | None, currency: str | None) -> Money | None:
        return Money(int(amount), currency) if currency and amount is not None else None

    return AlertRecord(
        alert_id=r["alert_id"],
        revision=r["revision"],
        store_id=r["store_id"],
        lane_id=r["lane_id"],
        type=r["type"],
        raised_ms=r["raised_ms"],
        transaction_id=r["transaction_id"],
        pos_exception_kind=r["pos_exception_kind"],
        severity=r["severity"],
        confidence=r["confidence"],
        amount_at_risk=money(r["at_risk_minor"], r["at_risk_currency"]),
        amount_recovered=money(r["recovered_minor"], r["recovered_currency"]),
        reason=r["reason"],
        suggested_action=r["suggested_action"],
        state=r["state"],
        disposition=r["disposition"],
        escalation=r["escalation"],
        acknowledged_ms=r["acknowledged_ms"],
        resolved_ms=r["resolved_ms"],
        acknowledged_by=r["acknowledged_by"],
        resolved_by=r["resolved_by"],
        resolution_note=r["resolution_note"],
        vision_available=bool(r["vision_available"]),
        gtin=r["gtin"],
        plu=r["plu"],
        item_description=r["item_description"],
        category=r["category"],
        rule=r["rule"],
        merged_signals=r["merged_signals"],
    )
