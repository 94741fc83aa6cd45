"""Builders of lane events, alerts and the crafted dataset the reporting tests share."""

from __future__ import annotations

import itertools
import uuid

from lanesight.common.config import LanesightConfig
from lanesight.reporting import convert
from lanesight.reporting.config import ReportingConfig
from lanesight.v1 import alerts_pb2, common_pb2, events_pb2, reporting_pb2

# 2024-03-04T09:00:00Z, a Monday.
T0_MS = 1_709_542_800_000
SECOND = 1000
HOUR = 3_600_000
DAY = 86_400_000


def money(minor: int, currency: str = "USD") -> common_pb2.Money:
    return common_pb2.Money(amount_minor=minor, currency_code=currency)


# Set by the reporting tests' backend fixture: the PostgreSQL database of this test run.
DATABASE_URL = ""


def reporting_config(tmp_path, **overrides) -> ReportingConfig:
    values = {
        "db_path": tmp_path / "reporting.db",
        "retention_interval_s": 0,
        "database_url": DATABASE_URL,
        **overrides,
    }
    return ReportingConfig(**values)


def cli_database(db_path) -> list[str]:
    """The CLI arguments naming the test's database: --database-url on PostgreSQL."""
    return ["--database-url", DATABASE_URL] if DATABASE_URL else ["--db", str(db_path)]


async def query(config: ReportingConfig, sql: str) -> list[tuple]:
    """Rows of a query on the test's database, whichever the backend (a fresh connection)."""
    if config.database_url:
        import asyncpg

        conn = await asyncpg.connect(config.database_url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    import aiosqlite

    async with aiosqlite.connect(config.db_path) as conn, conn.execute(sql) as cursor:
        return [tuple(r) for r in await cursor.fetchall()]


async def count(config: ReportingConfig, table: str) -> int:
    """Rows in a table of the test's database."""
    return int((await query(config, f"SELECT COUNT(*) FROM {table}"))[0][0])


def service_config(tmp_path, **overrides) -> LanesightConfig:
    return LanesightConfig(reporting=reporting_config(tmp_path, **overrides))


class Lane:
    """Makes the events of one lane with increasing sequence numbers."""

    def __init__(self, store_id: str, lane_id: str) -> None:
        self.store_id = store_id
        self.lane_id = lane_id
        self.sequence = itertools.count(1)

    def event(self, time_ms: int, txn: str = "", **payload) -> events_pb2.LaneEvent:
        ((name, message),) = payload.items()
        event = events_pb2.LaneEvent(
            event_id=str(uuid.uuid4()),
            store_id=self.store_id,
            lane_id=self.lane_id,
            sequence=next(self.sequence),
            transaction_id=txn,
            source_device_id="test",
            lane_time=convert.ms_ts(time_ms),
        )
        getattr(event, name).CopyFrom(message)
        return event


def item(line: str, gtin: str = "", method=events_pb2.ENTRY_METHOD_SCANNED, **extra):
    price = extra.pop("price", 199)
    extra.setdefault("unit_price", money(price))
    return events_pb2.ItemAdded(
        line_id=line,
        gtin=gtin,
        quantity=1,
        entry_method=method,
        extended_price=money(price),
        **extra,
    )


def alert(
    alert_id: str,
    revision: int,
    store: str,
    lane: str,
    type_: int,
    raised_ms: int,
    *,
    at_risk: common_pb2.Money | None = None,
    recovered: common_pb2.Money | None = None,
    state=alerts_pb2.ALERT_STATE_OPEN,
    disposition=alerts_pb2.DISPOSITION_UNSPECIFIED,
    acked_ms: int | None = None,
    resolved_ms: int | None = None,
    category: str = "",
    rule: str = "",
    evidence: tuple[str, ...] = (),
) -> alerts_pb2.Alert:
    message = alerts_pb2.Alert(
        alert_id=alert_id,
        revision=revision,
        store_id=store,
        lane_id=lane,
        type=type_,
        state=state,
        disposition=disposition,
        category=category,
        rule=rule,
        raised_at=convert.ms_ts(raised_ms),
        supporting_event_ids=evidence,
        reason="Please check the item in the bagging area.",
    )
    if at_risk is not None:
        message.amount_at_risk.CopyFrom(at_risk)
    if recovered is not None:
        message.amount_recovered.CopyFrom(recovered)
    if acked_ms is not None:
        message.acknowledged_at.CopyFrom(convert.ms_ts(acked_ms))
        message.acknowledged_by = "att-1"
    if resolved_ms is not None:
        message.resolved_at.CopyFrom(convert.ms_ts(resolved_ms))
        message.resolved_by = "att-2"
    return message


def as_records(items, first_sequence: int = 1) -> list[reporting_pb2.ReportRecord]:
    records = []
    for sequence, thing in enumerate(items, first_sequence):
        if isinstance(thing, events_pb2.LaneEvent):
            records.append(reporting_pb2.ReportRecord(record_sequence=sequence, event=thing))
        else:
            records.append(reporting_pb2.ReportRecord(record_sequence=sequence, alert=thing))
    return records


G1, G2, G3 = "00012345678905", "05000112637922", "04006381333931"
G4 = "05012345678900"  # the item with a bad label: keyed twice


def crafted_events() -> list[events_pb2.LaneEvent]:
    """Lane events with hand-countable figures (expected values in the report tests)."""
    a = Lane("s1", "1")
    t = T0_MS
    s = SECOND
    E = events_pb2
    events = [
        a.event(t, operator_sign_on=E.OperatorSignOn(operator_id="op-a")),
        a.event(t + 1 * s, "t1", transaction_started=E.TransactionStarted(operator_id="op-a")),
        a.event(t + 2 * s, "t1", barcode_read=E.BarcodeRead(gtin=G1)),
        a.event(t + 3 * s, "t1", item_added=item("1", G1)),  # first pass
        a.event(t + 4 * s, "t1", scanner_no_read=E.ScannerNoRead(scanner_id="scanner-1")),
        a.event(t + 5 * s, "t1", barcode_read=E.BarcodeRead(gtin=G2)),
        a.event(t + 6 * s, "t1", item_added=item("2", G2)),  # after a no-read
        a.event(t + 7 * s, "t1", barcode_read=E.BarcodeRead(gtin=G3)),
        a.event(t + 8 * s, "t1", barcode_read=E.BarcodeRead(gtin=G3)),
        a.event(t + 9 * s, "t1", item_added=item("3", G3)),  # a rescan
        a.event(t + 10 * s, "t1", item_added=item("4", G4, E.ENTRY_METHOD_KEYED)),
        a.event(
            t + 11 * s,
            "t1",
            item_added=item(
                "5",
                plu="4011",
                method=E.ENTRY_METHOD_PLU_LOOKUP,
                weight_mg=1_200_000,
                unit_of_measure=common_pb2.UNIT_OF_MEASURE_KILOGRAM,
            ),
        ),
        a.event(t + 12 * s, "t1", item_voided=E.ItemVoided(line_id="3", amount=money(199))),
        a.event(
            t + 13 * s,
            "t1",
            price_override=E.PriceOverride(
                line_id="1", original_unit_price=money(500), new_unit_price=money(300)
            ),
        ),
        a.event(
            t + 14 * s,
            "t1",
            discount_applied=E.DiscountApplied(amount=money(100), kind=E.DISCOUNT_KIND_MANUAL),
        ),
        a.event(
            t + 15 * s,
            "t1",
            discount_applied=E.DiscountApplied(amount=money(50), kind=E.DISCOUNT_KIND_PROMOTION),
        ),
        a.event(
            t + 16 * s,
            "t1",
            attendant_override=E.AttendantOverride(attendant_id="sup-1", reason_code="age"),
        ),
        a.event(t + 17 * s, "t1", tender_started=E.TenderStarted(total=money(900))),
        a.event(t + 18 * s, "t1", item_voided=E.ItemVoided(line_id="2", amount=money(199))),
        a.event(
            t + 19 * s,
            "t1",
            tender_completed=E.TenderCompleted(tender_type=E.TENDER_TYPE_CARD, amount=money(701)),
        ),
        a.event(
            t + 20 * s,
            "t1",
            transaction_ended=E.TransactionEnded(
                total=money(701), item_count=3, outcome=E.TRANSACTION_OUTCOME_COMPLETED
            ),
        ),
        a.event(t + 30 * s, "t2", transaction_started=E.TransactionStarted(operator_id="op-a")),
        a.event(t + 31 * s, "t2", item_added=item("1", G4)),  # scanned at the first try
        a.event(t + 32 * s, "t2", item_added=item("2", G4, E.ENTRY_METHOD_KEYED)),
        a.event(
            t + 33 * s,
            "t2",
            transaction_ended=E.TransactionEnded(
                total=money(0), outcome=E.TRANSACTION_OUTCOME_CANCELLED
            ),
        ),
        a.event(t + 40 * s, no_sale_drawer_open=E.NoSaleDrawerOpen(operator_id="op-a")),
        a.event(
            t + 50 * s,
            "t3",
            transaction_started=E.TransactionStarted(
                operator_id="op-a", kind=E.TRANSACTION_KIND_RETURN
            ),
        ),
        a.event(
            t + 51 * s, "t3", refund_issued=E.RefundIssued(amount=money(300), with_receipt=True)
        ),
        a.event(t + 52 * s, "t3", refund_issued=E.RefundIssued(amount=money(450))),
        a.event(t + 53 * s, "t3", transaction_ended=E.TransactionEnded(total=money(-750))),
        # Devices: 2 not-zeroed episodes, 1 over capacity, 1 paper out, 2 cover opens,
        # 2 disconnections, cameras unhealthy 60 s + 90 s (open until the lane's last event).
        *(
            a.event(
                t + (60 + i) * s,
                scale_reading=E.ScaleReading(scale_id="sc", role=E.SCALE_ROLE_BAGGING, status=st),
            )
            for i, st in enumerate(
                [
                    E.SCALE_STATUS_NOT_ZEROED,
                    E.SCALE_STATUS_NOT_ZEROED,
                    E.SCALE_STATUS_STABLE,
                    E.SCALE_STATUS_NOT_ZEROED,
                    E.SCALE_STATUS_OVER_CAPACITY,
                    E.SCALE_STATUS_OVER_CAPACITY,
                ]
            )
        ),
        *(
            a.event(
                t + (70 + i) * s,
                printer_status_changed=E.PrinterStatusChanged(printer_id="pr", **status),
            )
            for i, status in enumerate(
                [
                    {"reachable": True, "paper": E.PAPER_STATUS_OUT},
                    {"reachable": True, "paper": E.PAPER_STATUS_OUT, "cover_open": True},
                    {"reachable": False},
                    {"reachable": True, "paper": E.PAPER_STATUS_ADEQUATE},
                    {"reachable": True, "paper": E.PAPER_STATUS_ADEQUATE, "cover_open": True},
                ]
            )
        ),
        *(
            a.event(
                t + (80 + i) * s,
                peripheral_health_changed=E.PeripheralHealthChanged(
                    device_id="scanner-1", kind=common_pb2.DEVICE_KIND_SCANNER, state=st
                ),
            )
            for i, st in enumerate(
                [
                    E.PERIPHERAL_STATE_DISCONNECTED,
                    E.PERIPHERAL_STATE_DISCONNECTED,
                    E.PERIPHERAL_STATE_CONNECTED,
                    E.PERIPHERAL_STATE_DISCONNECTED,
                ]
            )
        ),
        a.event(
            t + 100 * s,
            camera_health_changed=E.CameraHealthChanged(
                camera_id="cam", health=E.CAMERA_HEALTH_BLOCKED
            ),
        ),
        a.event(
            t + 160 * s,
            camera_health_changed=E.CameraHealthChanged(camera_id="cam", health=E.CAMERA_HEALTH_OK),
        ),
        a.event(
            t + 200 * s,
            camera_health_changed=E.CameraHealthChanged(
                camera_id="cam", health=E.CAMERA_HEALTH_DARK
            ),
        ),
        a.event(
            t + 290 * s, drawer_state_changed=E.DrawerStateChanged(state=E.DRAWER_STATE_CLOSED)
        ),
    ]
    b = Lane("s1", "2")
    events += [
        b.event(t + HOUR, "t4", transaction_started=E.TransactionStarted(operator_id="op-b")),
        b.event(t + HOUR + s, "t4", item_added=item("1", G1)),
        b.event(t + HOUR + 2 * s, "t4", item_added=item("2", G2)),
        b.event(t + HOUR + 3 * s, "t4", transaction_ended=E.TransactionEnded(total=money(398))),
    ]
    return events


def crafted_alerts() -> list[alerts_pb2.Alert]:
    """Five alerts over two stores and two currencies; A1 arrives out of revision order."""
    A = alerts_pb2
    t = T0_MS
    s = SECOND
    a1 = dict(
        at_risk=money(500), category="produce", rule="missed_scan_v1", evidence=("ev-1", "ev-2")
    )
    return [
        alert("A1", 1, "s1", "1", A.ALERT_TYPE_MISSED_SCAN, t + 10 * s, **a1),
        alert(
            "A1",
            3,
            "s1",
            "1",
            A.ALERT_TYPE_MISSED_SCAN,
            t + 10 * s,
            **a1,
            recovered=money(500),
            state=A.ALERT_STATE_RESOLVED,
            disposition=A.DISPOSITION_RECOVERED,
            acked_ms=t + 40 * s,
            resolved_ms=t + 100 * s,
        ),
        alert(
            "A1",
            2,
            "s1",
            "1",
            A.ALERT_TYPE_MISSED_SCAN,
            t + 10 * s,
            **a1,
            state=A.ALERT_STATE_ACKNOWLEDGED,
            acked_ms=t + 40 * s,
        ),
        alert(
            "A2",
            2,
            "s1",
            "1",
            A.ALERT_TYPE_MISSED_SCAN,
            t + 20 * s,
            at_risk=money(300),
            category="produce",
            rule="missed_scan_v1",
            state=A.ALERT_STATE_RESOLVED,
            disposition=A.DISPOSITION_FALSE_ALERT,
            acked_ms=t + 30 * s,
            resolved_ms=t + 60 * s,
        ),
        alert(
            "A3",
            2,
            "s1",
            "2",
            A.ALERT_TYPE_WEIGHT_MISMATCH,
            t + HOUR,
            at_risk=money(250),
            recovered=money(250),
            category="dairy",
            rule="weight_v1",
            state=A.ALERT_STATE_RESOLVED,
            disposition=A.DISPOSITION_SHOPPER_CORRECTED,
            acked_ms=t + HOUR + 20 * s,
            resolved_ms=t + HOUR + 60 * s,
        ),
        alert(
            "A4",
            1,
            "s2",
            "1",
            A.ALERT_TYPE_ITEM_MISMATCH,
            t + DAY + 2 * HOUR,
            at_risk=money(1000, "EUR"),
            category="beverages",
            rule="switch_v1",
        ),
        alert(
            "A5",
            2,
            "s1",
            "1",
            A.ALERT_TYPE_CAMERA_TAMPER,
            t + 30 * s,
            rule="camera_v1",
            state=A.ALERT_STATE_RESOLVED,
            disposition=A.DISPOSITION_HONEST_MISTAKE,
            acked_ms=t + 35 * s,
            resolved_ms=t + 230 * s,
        ),
    ]


def crafted_records() -> list[reporting_pb2.ReportRecord]:
    return as_records([*crafted_events(), *crafted_alerts()])


async def load_crafted(store) -> None:
    """Ingest the crafted dataset through the store, as the servicer would, and wait for
    its facts (tests read the derived tables directly, not only through reports)."""
    records = [convert.record_from_proto(r) for r in crafted_records()]
    await store.ingest("fusion-test", records)
    await store.projected()
