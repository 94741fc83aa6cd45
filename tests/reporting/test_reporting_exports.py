"""Exports: CSV for every report, and the HTML page rendered by headless Chromium."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from lanesight.common.cli import main
from lanesight.reporting import convert
from lanesight.reporting.config import ReportingConfig, StoreInfo
from lanesight.reporting.exports import export_report
from lanesight.reporting.model import InvalidArgument, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore
from lanesight.v1 import alerts_pb2

from tests.reporting.reporting_builders import (
    T0_MS,
    alert,
    as_records,
    cli_database,
    load_crafted,
    reporting_config,
)

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


# Where the page's screenshots are kept (test artefacts; two are copied into docs/images).
ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "artefacts" / "reporting"
# Injected into a copy of the page (the page itself has no scripts): what a reader at this
# width would find cut off or scrolling sideways.
MEASURE = """<script>
addEventListener('load', () => {
  const width = document.documentElement.clientWidth, out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > width + 1 || box.left < -1)) out.push('outside:' + el.tagName);
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
      out.push('clipped:' + el.tagName);
  }
  const b = parent.document.body;
  b.setAttribute('data-inner-width', innerWidth);
  b.setAttribute('data-scroll-width', document.documentElement.scrollWidth);
  b.setAttribute('data-height', document.documentElement.scrollHeight);
  b.setAttribute('data-problems', out.slice(0, 20).join(' '));
});
</script>"""


def framed(page: str, width: int, height: int) -> str:
    """The page in a frame ``width`` pixels wide: headless Chromium's window is at least
    500 pixels, a frame is the phone's viewport (media queries and all)."""
    return (
        "<!DOCTYPE html><html><head><style>body{margin:0}iframe{border:0;display:block}"
        f'</style></head><body><iframe width="{width}" height="{height}" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe></body></html>'
    )


async def manager_page(tmp_path) -> tuple[str, ReportingConfig]:
    config = reporting_config(
        tmp_path,
        stores={
            "s1": StoreInfo(name="Riverside Market", timezone="America/Chicago", region="north"),
            "s3": StoreInfo(name="Hilltop", timezone="Europe/London", region="north"),
        },
    )
    store = await ReportStore.open(config)
    try:
        await load_crafted(store)
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
        reports = Reports(store.reader, config)
        exported = await export_report(reports, "all", "html", ReportFilter(), [], T0_MS)
    finally:
        await store.close()
    return exported.data.decode(), config


async def test_manager_page_speaks_in_words(tmp_path):
    page, _ = await manager_page(tmp_path)
    assert "<script" not in page  # the category was escaped, and the page has no scripts
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)  # nothing external
    for header in (
        "Health score",
        "First-pass scan rate",
        "Keyed entries",
        "Reason",
        "Time to resolve (median, slowest 5 %)",
        "Shrink per 1,000 transactions",
        "False alerts per 100 honest transactions",
        "Raised (local time)",
    ):
        assert f">{header}</th>" in page, header
    assert "Riverside Market" in page and "Hilltop" in page  # store names, not ids
    assert "2024-03-04 03:00 CST" in page  # T0 (09:00Z) in Riverside's local time
    assert ">67 of 100<" in page  # a score out of 100 in the table
    assert "50.0 %" in page  # missed_scan_v1's precision, as a percentage
    assert "3.3 min" in page  # camera_v1's 200 s to resolve
    assert ">n/a<" in page  # nothing to rate somewhere (never 0.0 %)
    assert "Please check the item in the bagging area." in page  # the reason column
    assert 'data-chart="alerts-by-hour"' in page
    # An alert links to its evidence, listed on the page (no evidence URL configured).
    assert '<a href="#evidence-A1">2 events</a>' in page and 'id="evidence-A1"' in page


async def test_evidence_links_follow_the_configured_url(loaded):
    store, _ = loaded
    config = store.config.model_copy(
        update={"evidence_url": "https://console.example/e/{event_id}"}
    )
    exported = await export_report(
        Reports(store.reader, config), "all", "html", ReportFilter(), [], T0_MS
    )
    assert '<a href="https://console.example/e/ev-1">event 1</a>' in exported.data.decode()


@needs_chromium
@pytest.mark.parametrize("width", [390, 1440])
async def test_manager_page_reads_on_a_phone_and_a_desk(tmp_path, backend, width):
    """Headless Chromium at phone and desktop widths: no sideways scroll, nothing cut off,
    every chart drawn; the screenshots are kept as artefacts."""
    page, _ = await manager_page(tmp_path)
    window = max(width, 500)
    measured = tmp_path / "measured.html"
    measured.write_text(framed(page.replace("</body>", MEASURE + "</body>"), width, 900))
    dom = (
        await run_chromium(
            f"--user-data-dir={tmp_path / 'dom'}",
            f"--window-size={window},900",
            "--virtual-time-budget=2000",
            "--dump-dom",
            measured.as_uri(),
        )
    ).decode()
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert int(attrs["inner-width"]) == width
    assert int(attrs["scroll-width"]) <= width, "the page scrolls sideways"
    assert attrs["problems"] == "", attrs["problems"]
    charts = set(re.findall(r'<svg[^>]*data-chart="([^"]+)"', page))
    assert {
        "shrink-over-time-USD",
        "shrink-over-time-EUR",
        "shrink-by-lane-USD",
        "alert-precision",
        "alerts-by-hour",
        "lane-health",
    } <= charts
    assert page.count('class="series"') == 4  # at risk and recovered, per currency

    height = min(int(attrs["height"]), 16_000)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"report-{width}px-{backend}.png"
    path = tmp_path / "framed.html"
    path.write_text(framed(page, width, height))
    await run_chromium(
        f"--user-data-dir={tmp_path / 'shot'}",
        f"--screenshot={shot}",
        f"--window-size={window},{height}",
        "--hide-scrollbars",
        path.as_uri(),
    )
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (height, window)
    image = image[:, :width]
    cv2.imwrite(str(shot), image)
    assert np.any(image < 240, axis=2).mean() > 0.02, "the page rendered blank"
    # The lane-health bars are purple (#8e44ad) and the precision bars green (#27ae60).
    for rgb in ((0x8E, 0x44, 0xAD), (0x27, 0xAE, 0x60)):
        bgr = np.array(rgb[::-1], dtype=np.int16)
        close = np.all(np.abs(image.astype(np.int16) - bgr) < 12, axis=2)
        assert close.sum() > 200, f"no chart drawn in {rgb}"


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
