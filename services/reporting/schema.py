"""The reporting database schema as numbered migrations, applied in order at open."""

from __future__ import annotations

import logging
import time

import aiosqlite

log = logging.getLogger(__name__)

_ALERT_ROLLUPS = """
        ALTER TABLE alerts ADD COLUMN counts_transaction INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX alerts_transaction ON alerts(store_id, lane_id, transaction_id);
        CREATE TABLE rollup_alert (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            local_hour INTEGER NOT NULL,
            type TEXT NOT NULL,
            rule TEXT NOT NULL,
            category TEXT NOT NULL,
            currency TEXT NOT NULL,
            entries BIGINT NOT NULL DEFAULT 0,
            raised BIGINT NOT NULL DEFAULT 0,
            alerts BIGINT NOT NULL DEFAULT 0,
            resolved BIGINT NOT NULL DEFAULT 0,
            false_alerts BIGINT NOT NULL DEFAULT 0,
            corrected BIGINT NOT NULL DEFAULT 0,
            priced BIGINT NOT NULL DEFAULT 0,
            confirmed_transactions BIGINT NOT NULL DEFAULT 0,
            at_risk_minor BIGINT NOT NULL DEFAULT 0,
            recovered_minor BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, lane_id, bucket_ms, local_day, local_hour, type, rule,
                         category, currency)
        );
        CREATE INDEX rollup_alert_bucket ON rollup_alert(bucket_ms);
        CREATE TABLE rollup_alert_store (
            store_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            local_hour INTEGER NOT NULL,
            type TEXT NOT NULL,
            rule TEXT NOT NULL,
            category TEXT NOT NULL,
            currency TEXT NOT NULL,
            entries BIGINT NOT NULL DEFAULT 0,
            raised BIGINT NOT NULL DEFAULT 0,
            alerts BIGINT NOT NULL DEFAULT 0,
            resolved BIGINT NOT NULL DEFAULT 0,
            false_alerts BIGINT NOT NULL DEFAULT 0,
            corrected BIGINT NOT NULL DEFAULT 0,
            priced BIGINT NOT NULL DEFAULT 0,
            confirmed_transactions BIGINT NOT NULL DEFAULT 0,
            at_risk_minor BIGINT NOT NULL DEFAULT 0,
            recovered_minor BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, bucket_ms, local_day, local_hour, type, rule, category,
                         currency)
        );
        CREATE INDEX rollup_alert_store_bucket ON rollup_alert_store(bucket_ms);
        CREATE TABLE rollup_alert_time (
            store_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            type TEXT NOT NULL,
            rule TEXT NOT NULL,
            measure TEXT NOT NULL,
            band INTEGER NOT NULL,
            alerts BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, bucket_ms, type, rule, measure, band)
        );
        CREATE INDEX alerts_acknowledge_time
            ON alerts(type, rule, (acknowledged_ms - raised_ms), raised_ms, store_id);
        CREATE INDEX alerts_resolve_time
            ON alerts(type, rule, (resolved_ms - raised_ms), raised_ms, store_id);
        CREATE INDEX rollup_alert_time_bucket ON rollup_alert_time(bucket_ms)
        """

# Version 8 (both backends): raw events are acknowledged as soon as they are stored, and
# the projector derives facts and rollups from them later. ingest_seq numbers stored
# events in the order they were stored (NULL for events stored before: they are projected
# already); projection_cursor is the last ingest_seq projected. data holds the payload
# fields of an event stored without its serialized form (a data-quality record).
_PROJECTION_DESCRIPTION = (
    "facts derived after the ack: stored events numbered, the projector's durable cursor"
)
_PROJECTION = """
    ALTER TABLE events ADD COLUMN ingest_seq {big};
    ALTER TABLE events ADD COLUMN data TEXT;
    CREATE INDEX events_ingest_seq ON events(ingest_seq);
    CREATE TABLE projection_cursor (
        name TEXT PRIMARY KEY,
        position {big} NOT NULL
    );
    INSERT INTO projection_cursor (name, position) VALUES ('facts', 0)
"""

# (version, description, SQL). Never edit a migration that has shipped: add a new one.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "feed, raw lane events and alerts",
        """
        CREATE TABLE ingest_senders (
            sender_id TEXT PRIMARY KEY,
            acked_sequence INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE TABLE ingest_gaps (
            sender_id TEXT NOT NULL,
            first_missing INTEGER NOT NULL,
            last_missing INTEGER NOT NULL,
            detected_ms INTEGER NOT NULL
        );
        CREATE TABLE events (
            event_id TEXT NOT NULL UNIQUE,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            transaction_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_device_id TEXT NOT NULL,
            raw BLOB
        );
        CREATE INDEX events_time ON events(time_ms);
        CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            type TEXT NOT NULL,
            pos_exception_kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            confidence REAL NOT NULL,
            at_risk_minor INTEGER,
            at_risk_currency TEXT,
            recovered_minor INTEGER,
            recovered_currency TEXT,
            reason TEXT NOT NULL,
            suggested_action TEXT NOT NULL,
            state TEXT NOT NULL,
            disposition TEXT NOT NULL,
            escalation TEXT NOT NULL,
            raised_ms INTEGER NOT NULL,
            acknowledged_ms INTEGER,
            resolved_ms INTEGER,
            acknowledged_by TEXT NOT NULL,
            resolved_by TEXT NOT NULL,
            resolution_note TEXT NOT NULL,
            vision_available INTEGER NOT NULL,
            gtin TEXT NOT NULL,
            plu TEXT NOT NULL,
            item_description TEXT NOT NULL,
            category TEXT NOT NULL,
            rule TEXT NOT NULL,
            merged_signals INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            local_hour INTEGER NOT NULL
        );
        CREATE INDEX alerts_raised ON alerts(raised_ms, alert_id);
        CREATE INDEX alerts_lane ON alerts(store_id, lane_id, raised_ms);
        CREATE TABLE alert_revisions (
            alert_id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            state TEXT NOT NULL,
            disposition TEXT NOT NULL,
            acknowledged_ms INTEGER,
            resolved_ms INTEGER,
            acknowledged_by TEXT NOT NULL,
            resolved_by TEXT NOT NULL,
            resolution_note TEXT NOT NULL,
            recovered_minor INTEGER,
            recovered_currency TEXT,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (alert_id, revision)
        );
        CREATE TABLE alert_changes (
            alert_id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            change TEXT NOT NULL,
            value TEXT NOT NULL,
            actor TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            UNIQUE (alert_id, change, value)
        );
        CREATE TABLE alert_evidence (
            alert_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (alert_id, event_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        "transactions and per-event facts derived from lane events",
        """
        CREATE TABLE transactions (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            kind TEXT,
            self_checkout INTEGER,
            started_ms INTEGER,
            tender_started_ms INTEGER,
            ended_ms INTEGER,
            outcome TEXT,
            total_minor INTEGER,
            currency TEXT,
            item_count INTEGER,
            source TEXT NOT NULL,
            PRIMARY KEY (store_id, lane_id, transaction_id)
        );
        CREATE INDEX transactions_time ON transactions(time_ms);
        CREATE TABLE items (
            event_id TEXT NOT NULL UNIQUE,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            line_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            item_code TEXT NOT NULL,
            description TEXT NOT NULL,
            entry_method TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            weighed INTEGER NOT NULL,
            weight_mg INTEGER NOT NULL,
            extended_minor INTEGER,
            currency TEXT,
            first_pass INTEGER,
            label_item INTEGER NOT NULL
        );
        CREATE INDEX items_time ON items(time_ms);
        CREATE TABLE pos_events (
            event_id TEXT NOT NULL UNIQUE,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            kind TEXT NOT NULL,
            after_tender INTEGER NOT NULL,
            amount_minor INTEGER,
            currency TEXT
        );
        CREATE INDEX pos_events_time ON pos_events(time_ms);
        CREATE TABLE lane_incidents (
            event_id TEXT NOT NULL UNIQUE,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            kind TEXT NOT NULL
        );
        CREATE INDEX lane_incidents_time ON lane_incidents(time_ms);
        CREATE TABLE camera_changes (
            event_id TEXT NOT NULL UNIQUE,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            healthy INTEGER NOT NULL
        );
        CREATE INDEX camera_changes_camera
            ON camera_changes(store_id, lane_id, camera_id, time_ms);
        CREATE TABLE lane_clock (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            last_time_ms INTEGER NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (store_id, lane_id)
        );
        """,
    ),
    (
        3,
        "daily rollups kept after retention, and POSLog import bookkeeping",
        """
        CREATE TABLE daily_lane (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            local_day TEXT NOT NULL,
            transactions INTEGER NOT NULL,
            items_entered INTEGER NOT NULL,
            items_scanned INTEGER NOT NULL,
            first_pass_scans INTEGER NOT NULL,
            items_keyed INTEGER NOT NULL,
            items_weighed INTEGER NOT NULL,
            scanner_no_reads INTEGER NOT NULL,
            scale_not_zeroed INTEGER NOT NULL,
            scale_over_capacity INTEGER NOT NULL,
            printer_paper_out INTEGER NOT NULL,
            printer_cover_open INTEGER NOT NULL,
            device_disconnections INTEGER NOT NULL,
            camera_unhealthy_ms INTEGER NOT NULL,
            PRIMARY KEY (store_id, lane_id, local_day)
        );
        CREATE TABLE daily_operator (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            local_day TEXT NOT NULL,
            transactions INTEGER NOT NULL,
            voids INTEGER NOT NULL,
            voids_after_tender INTEGER NOT NULL,
            refunds_with_receipt INTEGER NOT NULL,
            refunds_without_receipt INTEGER NOT NULL,
            no_sales INTEGER NOT NULL,
            price_overrides INTEGER NOT NULL,
            discounts INTEGER NOT NULL,
            cancelled_transactions INTEGER NOT NULL,
            attendant_overrides INTEGER NOT NULL,
            PRIMARY KEY (store_id, lane_id, operator_id, local_day)
        );
        CREATE TABLE daily_item (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            local_day TEXT NOT NULL,
            item_code TEXT NOT NULL,
            description TEXT NOT NULL,
            entries INTEGER NOT NULL,
            keyed INTEGER NOT NULL,
            PRIMARY KEY (store_id, lane_id, local_day, item_code)
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE poslog_transactions (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            file_name TEXT NOT NULL,
            imported_ms INTEGER NOT NULL,
            PRIMARY KEY (store_id, lane_id, transaction_id)
        );
        """,
    ),
    (
        4,
        "event ids unique per lane, not per chain (two lanes may reuse a POS id)",
        """
        CREATE TABLE events_v4 (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            transaction_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_device_id TEXT NOT NULL,
            raw BLOB,
            UNIQUE (store_id, lane_id, event_id)
        );
        INSERT INTO events_v4 SELECT * FROM events;
        DROP TABLE events;
        ALTER TABLE events_v4 RENAME TO events;
        CREATE INDEX events_time ON events(time_ms);
        CREATE INDEX events_id ON events(event_id);
        CREATE TABLE items_v4 (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            line_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            item_code TEXT NOT NULL,
            description TEXT NOT NULL,
            entry_method TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            weighed INTEGER NOT NULL,
            weight_mg INTEGER NOT NULL,
            extended_minor INTEGER,
            currency TEXT,
            first_pass INTEGER,
            label_item INTEGER NOT NULL,
            UNIQUE (store_id, lane_id, event_id)
        );
        INSERT INTO items_v4 SELECT * FROM items;
        DROP TABLE items;
        ALTER TABLE items_v4 RENAME TO items;
        CREATE INDEX items_time ON items(time_ms);
        CREATE TABLE pos_events_v4 (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            kind TEXT NOT NULL,
            after_tender INTEGER NOT NULL,
            amount_minor INTEGER,
            currency TEXT,
            UNIQUE (store_id, lane_id, event_id)
        );
        INSERT INTO pos_events_v4 SELECT * FROM pos_events;
        DROP TABLE pos_events;
        ALTER TABLE pos_events_v4 RENAME TO pos_events;
        CREATE INDEX pos_events_time ON pos_events(time_ms);
        CREATE TABLE lane_incidents_v4 (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            kind TEXT NOT NULL,
            UNIQUE (store_id, lane_id, event_id)
        );
        INSERT INTO lane_incidents_v4 SELECT * FROM lane_incidents;
        DROP TABLE lane_incidents;
        ALTER TABLE lane_incidents_v4 RENAME TO lane_incidents;
        CREATE INDEX lane_incidents_time ON lane_incidents(time_ms);
        CREATE TABLE camera_changes_v4 (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            healthy INTEGER NOT NULL,
            UNIQUE (store_id, lane_id, event_id)
        );
        INSERT INTO camera_changes_v4 SELECT * FROM camera_changes;
        DROP TABLE camera_changes;
        ALTER TABLE camera_changes_v4 RENAME TO camera_changes;
        CREATE INDEX camera_changes_camera
            ON camera_changes(store_id, lane_id, camera_id, time_ms);
        """,
    ),
    (
        5,
        "rollups kept on ingest: per lane and hour, operator and hour, store, item and day",
        """
        CREATE TABLE rollup_lane (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            transactions BIGINT NOT NULL DEFAULT 0,
            items_entered BIGINT NOT NULL DEFAULT 0,
            items_scanned BIGINT NOT NULL DEFAULT 0,
            first_pass_scans BIGINT NOT NULL DEFAULT 0,
            items_keyed BIGINT NOT NULL DEFAULT 0,
            items_weighed BIGINT NOT NULL DEFAULT 0,
            scanner_no_reads BIGINT NOT NULL DEFAULT 0,
            scale_not_zeroed BIGINT NOT NULL DEFAULT 0,
            scale_over_capacity BIGINT NOT NULL DEFAULT 0,
            printer_paper_out BIGINT NOT NULL DEFAULT 0,
            printer_cover_open BIGINT NOT NULL DEFAULT 0,
            device_disconnections BIGINT NOT NULL DEFAULT 0,
            camera_unhealthy_ms BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, lane_id, bucket_ms)
        );
        CREATE INDEX rollup_lane_bucket ON rollup_lane(bucket_ms);
        CREATE TABLE rollup_operator (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            transactions BIGINT NOT NULL DEFAULT 0,
            voids BIGINT NOT NULL DEFAULT 0,
            voids_after_tender BIGINT NOT NULL DEFAULT 0,
            refunds_with_receipt BIGINT NOT NULL DEFAULT 0,
            refunds_without_receipt BIGINT NOT NULL DEFAULT 0,
            no_sales BIGINT NOT NULL DEFAULT 0,
            price_overrides BIGINT NOT NULL DEFAULT 0,
            discounts BIGINT NOT NULL DEFAULT 0,
            cancelled_transactions BIGINT NOT NULL DEFAULT 0,
            attendant_overrides BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, lane_id, operator_id, bucket_ms)
        );
        CREATE INDEX rollup_operator_bucket ON rollup_operator(bucket_ms);
        CREATE TABLE rollup_item (
            store_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            item_code TEXT NOT NULL,
            description TEXT NOT NULL,
            entries BIGINT NOT NULL DEFAULT 0,
            keyed BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, bucket_ms, item_code)
        );
        CREATE INDEX rollup_item_bucket ON rollup_item(bucket_ms);
        """,
    ),
    (
        6,
        "alert rollups kept on ingest: counts and times per lane, UTC hour and alert kind",
        _ALERT_ROLLUPS,
    ),
    (
        7,
        "events looked up by lane and id only: the index on the id alone goes",
        "DROP INDEX events_id",
    ),
    (
        8,
        _PROJECTION_DESCRIPTION,
        _PROJECTION.format(big="INTEGER"),
    ),
    (
        9,
        "stored events keyed by their number: one index fewer to keep on every insert",
        # ingest_seq becomes the table's own key (its rowid): the projector reads events
        # in storing order straight off the table, and the index that kept that order goes
        # (about a fifth of what storing an event cost). Events stored before numbering
        # (NULL: projected already) get negative numbers, below any cursor.
        """
        CREATE TABLE events_v9 (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            transaction_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_device_id TEXT NOT NULL,
            raw BLOB,
            ingest_seq INTEGER PRIMARY KEY,
            data TEXT,
            UNIQUE (store_id, lane_id, event_id)
        );
        INSERT INTO events_v9
            SELECT event_id, store_id, lane_id, sequence, time_ms, transaction_id, kind,
                   source_device_id, raw, COALESCE(ingest_seq, -rowid), data
            FROM events;
        DROP TABLE events;
        ALTER TABLE events_v9 RENAME TO events;
        CREATE INDEX events_time ON events(time_ms)
        """,
    ),
)

#: The rollups' buckets: UTC hours (lanes, operators) and UTC days (items).
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

LATEST_VERSION = MIGRATIONS[-1][0]

# The PostgreSQL schema: the same tables and columns as SQLite at the same version
# (version 4 is SQLite's 1..4 in one step; SQLite's 9 changes only its events table's
# key, which PostgreSQL's partitioned table keeps as an index), with the two volume tables (raw events and
# items) partitioned by month of lane time; PostgresStore creates each month's partition
# before the first write into it.
PG_MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        4,
        "feed, raw events and items (monthly partitions), alerts, facts, POSLog bookkeeping",
        """
        CREATE TABLE ingest_senders (
            sender_id TEXT PRIMARY KEY,
            acked_sequence BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        );
        CREATE TABLE ingest_gaps (
            sender_id TEXT NOT NULL,
            first_missing BIGINT NOT NULL,
            last_missing BIGINT NOT NULL,
            detected_ms BIGINT NOT NULL
        );
        CREATE TABLE events (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            sequence BIGINT NOT NULL,
            time_ms BIGINT NOT NULL,
            transaction_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_device_id TEXT NOT NULL,
            raw BYTEA,
            UNIQUE (store_id, lane_id, event_id, time_ms)
        ) PARTITION BY RANGE (time_ms);
        CREATE INDEX events_time ON events(time_ms);
        CREATE INDEX events_id ON events(event_id);
        CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY,
            revision BIGINT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            type TEXT NOT NULL,
            pos_exception_kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            confidence DOUBLE PRECISION NOT NULL,
            at_risk_minor BIGINT,
            at_risk_currency TEXT,
            recovered_minor BIGINT,
            recovered_currency TEXT,
            reason TEXT NOT NULL,
            suggested_action TEXT NOT NULL,
            state TEXT NOT NULL,
            disposition TEXT NOT NULL,
            escalation TEXT NOT NULL,
            raised_ms BIGINT NOT NULL,
            acknowledged_ms BIGINT,
            resolved_ms BIGINT,
            acknowledged_by TEXT NOT NULL,
            resolved_by TEXT NOT NULL,
            resolution_note TEXT NOT NULL,
            vision_available INTEGER NOT NULL,
            gtin TEXT NOT NULL,
            plu TEXT NOT NULL,
            item_description TEXT NOT NULL,
            category TEXT NOT NULL,
            rule TEXT NOT NULL,
            merged_signals INTEGER NOT NULL,
            local_day TEXT NOT NULL,
            local_hour INTEGER NOT NULL
        );
        CREATE INDEX alerts_raised ON alerts(raised_ms, alert_id);
        CREATE INDEX alerts_lane ON alerts(store_id, lane_id, raised_ms);
        CREATE TABLE alert_revisions (
            alert_id TEXT NOT NULL,
            revision BIGINT NOT NULL,
            state TEXT NOT NULL,
            disposition TEXT NOT NULL,
            acknowledged_ms BIGINT,
            resolved_ms BIGINT,
            acknowledged_by TEXT NOT NULL,
            resolved_by TEXT NOT NULL,
            resolution_note TEXT NOT NULL,
            recovered_minor BIGINT,
            recovered_currency TEXT,
            received_ms BIGINT NOT NULL,
            PRIMARY KEY (alert_id, revision)
        );
        CREATE TABLE alert_changes (
            alert_id TEXT NOT NULL,
            revision BIGINT NOT NULL,
            change TEXT NOT NULL,
            value TEXT NOT NULL,
            actor TEXT NOT NULL,
            at_ms BIGINT NOT NULL,
            UNIQUE (alert_id, change, value)
        );
        CREATE TABLE alert_evidence (
            alert_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (alert_id, event_id)
        );
        CREATE TABLE transactions (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            kind TEXT,
            self_checkout INTEGER,
            started_ms BIGINT,
            tender_started_ms BIGINT,
            ended_ms BIGINT,
            outcome TEXT,
            total_minor BIGINT,
            currency TEXT,
            item_count BIGINT,
            source TEXT NOT NULL,
            PRIMARY KEY (store_id, lane_id, transaction_id)
        );
        CREATE INDEX transactions_time ON transactions(time_ms);
        CREATE TABLE items (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            line_id TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            item_code TEXT NOT NULL,
            description TEXT NOT NULL,
            entry_method TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            weighed INTEGER NOT NULL,
            weight_mg BIGINT NOT NULL,
            extended_minor BIGINT,
            currency TEXT,
            first_pass INTEGER,
            label_item INTEGER NOT NULL,
            UNIQUE (store_id, lane_id, event_id, time_ms)
        ) PARTITION BY RANGE (time_ms);
        CREATE INDEX items_time ON items(time_ms);
        CREATE TABLE pos_events (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            kind TEXT NOT NULL,
            after_tender INTEGER NOT NULL,
            amount_minor BIGINT,
            currency TEXT,
            UNIQUE (store_id, lane_id, event_id)
        );
        CREATE INDEX pos_events_time ON pos_events(time_ms);
        CREATE TABLE lane_incidents (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            kind TEXT NOT NULL,
            UNIQUE (store_id, lane_id, event_id)
        );
        CREATE INDEX lane_incidents_time ON lane_incidents(time_ms);
        CREATE TABLE camera_changes (
            event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            local_day TEXT NOT NULL,
            healthy INTEGER NOT NULL,
            UNIQUE (store_id, lane_id, event_id)
        );
        CREATE INDEX camera_changes_camera
            ON camera_changes(store_id, lane_id, camera_id, time_ms);
        CREATE TABLE lane_clock (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            last_time_ms BIGINT NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (store_id, lane_id)
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE poslog_transactions (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            file_name TEXT NOT NULL,
            imported_ms BIGINT NOT NULL,
            PRIMARY KEY (store_id, lane_id, transaction_id)
        );
        """,
    ),
    (
        5,
        "rollups kept on ingest: per lane and hour, operator and hour, store, item and day",
        """
        CREATE TABLE rollup_lane (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            transactions BIGINT NOT NULL DEFAULT 0,
            items_entered BIGINT NOT NULL DEFAULT 0,
            items_scanned BIGINT NOT NULL DEFAULT 0,
            first_pass_scans BIGINT NOT NULL DEFAULT 0,
            items_keyed BIGINT NOT NULL DEFAULT 0,
            items_weighed BIGINT NOT NULL DEFAULT 0,
            scanner_no_reads BIGINT NOT NULL DEFAULT 0,
            scale_not_zeroed BIGINT NOT NULL DEFAULT 0,
            scale_over_capacity BIGINT NOT NULL DEFAULT 0,
            printer_paper_out BIGINT NOT NULL DEFAULT 0,
            printer_cover_open BIGINT NOT NULL DEFAULT 0,
            device_disconnections BIGINT NOT NULL DEFAULT 0,
            camera_unhealthy_ms BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, lane_id, bucket_ms)
        );
        CREATE INDEX rollup_lane_bucket ON rollup_lane(bucket_ms);
        CREATE TABLE rollup_operator (
            store_id TEXT NOT NULL,
            lane_id TEXT NOT NULL,
            operator_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            transactions BIGINT NOT NULL DEFAULT 0,
            voids BIGINT NOT NULL DEFAULT 0,
            voids_after_tender BIGINT NOT NULL DEFAULT 0,
            refunds_with_receipt BIGINT NOT NULL DEFAULT 0,
            refunds_without_receipt BIGINT NOT NULL DEFAULT 0,
            no_sales BIGINT NOT NULL DEFAULT 0,
            price_overrides BIGINT NOT NULL DEFAULT 0,
            discounts BIGINT NOT NULL DEFAULT 0,
            cancelled_transactions BIGINT NOT NULL DEFAULT 0,
            attendant_overrides BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, lane_id, operator_id, bucket_ms)
        );
        CREATE INDEX rollup_operator_bucket ON rollup_operator(bucket_ms);
        CREATE TABLE rollup_item (
            store_id TEXT NOT NULL,
            bucket_ms BIGINT NOT NULL,
            item_code TEXT NOT NULL,
            description TEXT NOT NULL,
            entries BIGINT NOT NULL DEFAULT 0,
            keyed BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, bucket_ms, item_code)
        );
        CREATE INDEX rollup_item_bucket ON rollup_item(bucket_ms);
        """,
    ),
    (
        6,
        "alert rollups kept on ingest: counts and times per lane, UTC hour and alert kind",
        _ALERT_ROLLUPS,
    ),
    (
        7,
        "events looked up by lane and id only: the index on the id alone goes",
        "DROP INDEX events_id",
    ),
    (
        8,
        _PROJECTION_DESCRIPTION,
        _PROJECTION.format(big="BIGINT"),
    ),
)


class SchemaError(RuntimeError):
    """The database cannot be used by this version of lanesight."""


async def current_version(conn: aiosqlite.Connection) -> int:
    """The schema version of the database; 0 for an empty one."""
    async with conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ) as cursor:
        if await cursor.fetchone() is None:
            return 0
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    assert row is not None  # an aggregate always returns one row
    return int(row[0])


async def migrate(conn: aiosqlite.Connection, up_to: int = LATEST_VERSION) -> int:
    """Apply every migration above the database's version, each in its own transaction.

    The connection must be in autocommit mode (isolation_level=None). Returns the version.
    """
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    )
    version = await current_version(conn)
    if version > LATEST_VERSION:
        raise SchemaError(
            f"the database is at schema version {version}, newer than this lanesight "
            f"(knows up to {LATEST_VERSION}); upgrade lanesight"
        )
    for number, description, sql in MIGRATIONS:
        if number <= version or number > up_to:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_ms) VALUES (?, ?, ?)",
                (number, description, int(time.time() * 1000)),
            )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        log.info("reporting schema migrated to version %d (%s)", number, description)
        version = number
    return version


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals)."""
    return [part.strip() for part in sql.split(";") if part.strip()]


PG_LATEST_VERSION = PG_MIGRATIONS[-1][0]
# Any constant: the advisory lock that keeps two replicas from migrating at once.
_PG_MIGRATION_LOCK = 0x6C616E65


async def migrate_postgres(conn) -> tuple[int, int]:
    """Apply every PostgreSQL migration above the database's version (asyncpg connection);
    the versions before and after."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
        )
        version = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        before = int(version)
        if version > PG_LATEST_VERSION:
            raise SchemaError(
                f"the database is at schema version {version}, newer than this lanesight "
                f"(knows up to {PG_LATEST_VERSION}); upgrade lanesight"
            )
        for number, description, sql in PG_MIGRATIONS:
            if number <= version:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_ms) VALUES ($1, $2, $3)",
                number,
                description,
                int(time.time() * 1000),
            )
            log.info("reporting schema migrated to version %d (%s)", number, description)
            version = number
    return before, int(version)
