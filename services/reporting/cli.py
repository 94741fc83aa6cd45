"""`lanesight report ...` and `lanesight import-poslog ...`: local (--db) or remote (--reporting)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime
from pathlib import Path

from lanesight.reporting.localtime import LocalTime, now_ms
from lanesight.reporting.model import ALERT_STATES, ALERT_TYPES, SHRINK_DIMENSIONS, InvalidArgument
from lanesight.reporting.model import ReportFilter as Filter
from lanesight.reporting.render import REPORT_KINDS, describe_import, render_text

_DEADLINE_S = 120.0


def _dash(name: str) -> str:
    return name.replace("_", "-")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML or YAML config file (LANESIGHT_* env overrides)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, help="the reporting SQLite file (default: config)")
    where.add_argument(
        "--database-url", metavar="URL", help="the reporting PostgreSQL database (postgresql://)"
    )
    where.add_argument("--reporting", metavar="HOST:PORT", help="ask a running service instead")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the reporting commands to the lanesight CLI."""
    report = subparsers.add_parser("report", help="print or export a report")
    kinds = report.add_subparsers(dest="report", required=True)
    for name in REPORT_KINDS:
        sub = kinds.add_parser(
            name,
            help=f"the {name} report"
            if name != "html"
            else "every report on one HTML page with charts",
        )
        _common(sub)
        sub.add_argument("--from", dest="start", help="first day or time included (lane time)")
        sub.add_argument("--to", dest="end", help="first day or time excluded")
        sub.add_argument("--store", action="append", default=[], help="only this store (repeat)")
        sub.add_argument("--lane", action="append", default=[], help="only this lane (repeat)")
        sub.add_argument(
            "--type",
            action="append",
            default=[],
            choices=[_dash(t) for t in ALERT_TYPES],
            help="only this alert type (repeat)",
        )
        sub.add_argument("--out", type=Path, help="write to this file instead of stdout")
        if name != "html":
            sub.add_argument("--format", choices=("table", "csv"), default="table")
        if name in ("shrink", "html"):
            sub.add_argument(
                "--group-by",
                default="day" if name == "html" else "",
                help="comma-separated: " + ", ".join(_dash(d) for d in SHRINK_DIMENSIONS),
            )
        if name == "pos-exceptions":
            sub.add_argument("--outlier-z", type=float, default=0.0, help="default 2")
        if name == "alerts":
            sub.add_argument("--state", choices=ALERT_STATES, default=None)
        if name in ("stores", "html"):
            sub.add_argument("--region", default="", help="only the stores of this region")
        if name == "lane-health":
            sub.add_argument(
                "--keyed-items", action="store_true", help="list items often keyed instead"
            )
        sub.set_defaults(handler=_report)
    importer = subparsers.add_parser(
        "import-poslog", help="load ARTS POSLog XML transactions into the reporting store"
    )
    _common(importer)
    importer.add_argument("--store", default="", help="store id for files that name none")
    importer.add_argument("files", nargs="+", type=Path, metavar="FILE")
    importer.set_defaults(handler=_import)


def _load_config(args):
    from lanesight.common.cli import load_config_or_exit

    return load_config_or_exit(args.config)


def _time_ms(text: str | None, local_time: LocalTime, name: str) -> int | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            return local_time.day_start_ms(date.fromisoformat(text).isoformat())
        return local_time.naive_to_ms(datetime.fromisoformat(text))
    except ValueError:
        raise InvalidArgument(name, f"not a date or date-time: {text!r}") from None


def _filter(args, local_time: LocalTime) -> Filter:
    result = Filter(
        start_ms=_time_ms(args.start, local_time, "--from"),
        end_ms=_time_ms(args.end, local_time, "--to"),
        store_ids=tuple(args.store),
        lane_ids=tuple(args.lane),
        alert_types=tuple(t.replace("-", "_") for t in args.type),
    )
    if (
        result.start_ms is not None
        and result.end_ms is not None
        and result.end_ms < result.start_ms
    ):
        raise InvalidArgument("--to", "is before --from")
    return result


def _group_by(args) -> list[str]:
    text = getattr(args, "group_by", "") or ""
    names = [part.strip().replace("-", "_") for part in text.split(",") if part.strip()]
    for name in names:
        if name not in SHRINK_DIMENSIONS:
            raise InvalidArgument("--group-by", f"unknown dimension {name!r}")
    return names


def _emit(args, data: bytes) -> None:
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(data)
        print(f"wrote {args.out} ({len(data)} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(data.decode())
        sys.stdout.flush()


def _report(args) -> int:
    config = _load_config(args)
    try:
        local_time = LocalTime(config.reporting.timezone)
        f = _filter(args, local_time)
        group_by = _group_by(args)
        if args.reporting:
            from lanesight.reporting.remote import remote_report

            data = asyncio.run(remote_report(args, config, f, group_by, _DEADLINE_S))
        else:
            config, db = _database(args, config)
            if db is not None and not db.exists():
                print(f"no reporting database at {db}", file=sys.stderr)
                return 2
            data = asyncio.run(_local_report(args, config, db, f, group_by))
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _emit(args, data)
    return 0


def _local_days(args) -> tuple[str, str] | None:
    """--from and --to when both are whole days (2024-03-01), for per-store local days."""
    if not args.start or not args.end:
        return None
    try:
        return date.fromisoformat(args.start).isoformat(), date.fromisoformat(args.end).isoformat()
    except ValueError:
        return None


def _database(args, config):
    """The config with --database-url applied, and the SQLite file (None for PostgreSQL)."""
    url = getattr(args, "database_url", None)
    if url:
        reporting = config.reporting.model_copy(update={"database_url": url})
        config = config.model_copy(update={"reporting": reporting})
    if args.db is None and config.reporting.database_url:
        return config, None
    return config, Path(args.db or config.reporting.db_path)


async def _local_report(args, config, db: Path | None, f: Filter, group_by: list[str]) -> bytes:
    from lanesight.reporting.exports import all_pages, export_report, gather
    from lanesight.reporting.reports import Reports
    from lanesight.reporting.store import ReportStore
    from lanesight.reporting.tables import alerts_table, keyed_table, to_csv, to_text

    kind = REPORT_KINDS[args.report]
    fmt = getattr(args, "format", "html")
    store = await ReportStore.open(config.reporting, db)
    try:
        reports = Reports(store.reader, config.reporting)
        if kind == "alerts":
            size = config.reporting.max_page_size
            state = args.state or "unspecified"
            alerts = await all_pages(lambda p: reports.list_alerts(f, state, p), size)
            return (to_csv if fmt == "csv" else to_text)(alerts_table(alerts)).encode()
        region = getattr(args, "region", "")
        # Whole days on the command line are each store's own local days.
        days = _local_days(args)
        if kind == "all":
            return (
                await export_report(reports, kind, "html", f, group_by, now_ms(), region, days)
            ).data
        keyed_only = getattr(args, "keyed_items", False)
        if fmt == "csv" and not keyed_only:
            return (
                await export_report(reports, kind, "csv", f, group_by, now_ms(), region, days)
            ).data
        bundle = await gather(reports, kind, f, group_by, region, days)
        if fmt == "csv":
            return to_csv(keyed_table(bundle.keyed)).encode()
        return render_text(bundle, kind, keyed_only).encode()
    finally:
        await store.close()


def _import(args) -> int:
    config = _load_config(args)
    if args.reporting:
        from lanesight.reporting.remote import remote_import

        return asyncio.run(remote_import(args, config, _DEADLINE_S))
    return asyncio.run(_local_import(args, config))


async def _local_import(args, config) -> int:
    from lanesight.reporting.importer import import_poslog
    from lanesight.reporting.poslog import PosLogError
    from lanesight.reporting.store import ReportStore

    config, db = _database(args, config)
    store = await ReportStore.open(config.reporting, db)
    failures = 0
    try:
        for path in args.files:
            try:
                with path.open("rb") as source:
                    result = await import_poslog(store, source, str(path), args.store)
            except (PosLogError, OSError) as exc:
                failures += 1
                print(f"error: {exc}", file=sys.stderr)
                continue
            print(describe_import(str(path), result))
    finally:
        await store.close()
    return 1 if failures else 0
