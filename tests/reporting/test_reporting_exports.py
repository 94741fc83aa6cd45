"""Exports: CSV for every report, and the HTML page rendered by headless Chromium."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from lanesight.common.cli import main
from lanesight.reporting import convert
from lanesight.reporting.exports import export_report
from lanesight.reporting.model import InvalidArgument, ReportFilter
from lanesight.v1 import alerts_pb2

from tests.reporting.reporting_builders import T0_MS, alert, as_records, cli_database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def csv_rows(reports, kind: str, group_by=()) -> list[dict[str, str]]:
    exported = await export_report(reports, kind, "csv", ReportFilter(), list(group_by), T0_MS)
    assert exported.content_type.startswith("text/csv")
    assert exported.filename == f"lanesight-{kind.replace('_', '-')}-20240304.csv"
    return list(csv.DictReader(io.StringIO(exported.data.decode())))


async def test_csv_for_every_report(loaded):
    _, reports = loaded
    shrink = await csv_rows(reports, "shrink")
    assert [tuple(r.values()) for r in shrink] == [
        ("2024-03-04", "USD", "4", "7.50", "7.50"),
        ("2024-03-05", "EUR", "1", "10.00", "0.00"),
    ]
    quality = {r["rule"]: r for r in await csv_rows(reports, "alert_quality")}
    assert quality["missed_scan_v1"]["precision"] == "0.5000"
    assert quality["missed_scan_v1"]["false_alerts_per_100_transactions"] == "25.0000"
    assert quality["camera_v1"]["resolve_p50_ms"] == "200000"
    lanes = await csv_rows(reports, "lane_health")
    assert [(r["store"], r["lane"], r["health_score"]) for r in lanes] == [
        ("s1", "1", "66.9"),
        ("s1", "2", "100.0"),
    ]
    assert lanes[0]["camera_unhealthy_seconds"] == "150"
    pos = {r["operator"]: r for r in await csv_rows(reports, "pos_exceptions")}
    assert (pos["op-a"]["voids"], pos["op-a"]["voids_after_tender"]) == ("2", "1")
    assert pos["sup-1"]["attendant_overrides"] == "1"
    alerts = await csv_rows(reports, "alerts")
    assert [r["alert_id"] for r in alerts] == ["A4", "A3", "A5", "A2", "A1"]
    assert (alerts[0]["currency"], alerts[0]["amount_at_risk"]) == ("EUR", "10.00")
    with pytest.raises(InvalidArgument, match="format"):
        await export_report(reports, "all", "csv", ReportFilter(), [], T0_MS)


async def run_chromium(*args: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *CHROMIUM_FLAGS,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0
    return stdout


@needs_chromium
async def test_html_page_renders_its_charts_in_chromium(loaded, tmp_path):
    store, reports = loaded
    hostile = alert(
        "A9",
        1,
        "s1",
        "2",
        alerts_pb2.ALERT_TYPE_QUANTITY_MISMATCH,
        T0_MS + 5000,
        category='<script>alert("x")</script>',
    )
    await store.ingest("f", [convert.record_from_proto(r) for r in as_records([hostile], 900)])
    exported = await export_report(reports, "all", "html", ReportFilter(), [], T0_MS)
    page = exported.data.decode()
    assert "<script" not in page  # the category was escaped, and the page has no scripts
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)  # nothing external
    path = tmp_path / "report.html"
    path.write_bytes(exported.data)

    dom = (
        await run_chromium(f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", path.as_uri())
    ).decode()
    charts = set(re.findall(r'<svg[^>]*data-chart="([^"]+)"', dom))
    assert {
        "shrink-over-time-USD",
        "shrink-over-time-EUR",
        "shrink-by-lane-USD",
        "alert-precision",
        "lane-health",
    } <= charts
    assert dom.count('class="bar"') >= 2 + 5 + 2  # lanes with shrink, rules, lanes with health
    assert dom.count('class="series"') == 4  # at risk and recovered, per currency

    shot = tmp_path / "report.png"
    await run_chromium(
        f"--user-data-dir={tmp_path / 'shot'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        path.as_uri(),
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2000, 1280)
    not_white = np.any(image < 240, axis=2).mean()
    assert not_white > 0.02, "the page rendered blank"
    # The lane-health bars are purple (#8e44ad) and the precision bars green (#27ae60).
    for rgb in ((0x8E, 0x44, 0xAD), (0x27, 0xAE, 0x60)):
        bgr = np.array(rgb[::-1], dtype=np.int16)
        close = np.all(np.abs(image.astype(np.int16) - bgr) < 12, axis=2)
        assert close.sum() > 500, f"no chart drawn in {rgb}"


def test_cli_writes_the_html_page(loaded, tmp_path, capsys):
    store, _ = loaded
    out = tmp_path / "out" / "report.html"
    code = main(["report", "html", *cli_database(store.config.db_path), "--out", str(out)])
    assert code == 0
    page = out.read_text()
    assert 'data-chart="lane-health"' in page and "66.9" in page
    assert (
        main(["report", "shrink", *cli_database(store.config.db_path), "--group-by", "store"]) == 0
    )
    table = capsys.readouterr().out
    assert re.search(r"s1\s+USD\s+4\s+7\.50\s+7\.50", table)
    assert (
        main(["report", "shrink", *cli_database(store.config.db_path), "--group-by", "aisle"]) == 2
    )
