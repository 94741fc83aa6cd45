"""POSLog import: the shared files' counts (counted here independently), safety, atomicity."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import grpc
import pytest
from lanesight.common.cli import main
from lanesight.common.server import start_server
from lanesight.reporting.app import create_app
from lanesight.reporting.importer import import_poslog
from lanesight.reporting.model import PageRequest, ReportFilter
from lanesight.reporting.poslog import PosLogError
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore
from lanesight.v1 import reporting_pb2, reporting_pb2_grpc

from tests.conftest import SHARED_DATA
from tests.reporting.reporting_builders import (
    cli_database,
    query,
    reporting_config,
    service_config,
)

DATA = SHARED_DATA / "poslog" / "sample"
FILES = [DATA / "SMALL.xml", DATA / "POSLog.xml"]
ARTS = "http://www.nrf-arts.org/IXRetail/namespace/"
ACS = "http://www.ncr.com/rsd/acs/tlog/markup/poslog/2.1"
NS = {"p": ARTS, "acs": ACS}
ALL = PageRequest(page_size=1000)


def counted_in_file(path: Path) -> dict[str, int]:
    """What the file holds, counted with plain ElementTree XPath (not through the importer)."""
    root = ET.parse(path).getroot()
    lines = root.findall("p:Transaction/p:RetailTransaction/p:LineItem", NS)
    not_void = [li for li in lines if li.get("VoidFlag") != "true"]
    return {
        "documents": len(root.findall("p:Transaction", NS)),
        "transactions": len(root.findall("p:Transaction[p:RetailTransaction]", NS)),
        "voided_lines": len(root.findall(".//p:LineItem[@VoidFlag='true']", NS)),
        "no_sales": len(root.findall("p:Transaction/p:ControlTransaction/p:NoSale", NS)),
        "weighed_items": sum(
            1
            for li in not_void
            if li.get(f"{{{ACS}}}weightItem") == "true" and li.find("p:Sale", NS) is not None
        ),
        "items": sum(1 for li in not_void if li.find("p:Sale", NS) is not None),
        "item_count_elements": len(root.findall(".//acs:ItemCount", NS)),
    }


async def shown_by_reports(reports: Reports) -> dict[str, int]:
    pos, _ = await reports.pos_exceptions(ReportFilter(), ALL)
    lanes, _, _ = await reports.lane_health(ReportFilter(), ALL)
    _, transactions, _ = await reports.alert_quality(ReportFilter(), ALL)
    assert transactions == sum(r.transactions for r in pos) == sum(r.transactions for r in lanes)
    return {
        "transactions": transactions,
        "voided_lines": sum(r.voids for r in pos),
        "no_sales": sum(r.no_sales for r in pos),
        "weighed_items": sum(r.items_weighed for r in lanes),
        "items": sum(r.items_entered for r in lanes),
    }


def test_the_independent_counts_are_not_trivial():
    assert counted_in_file(DATA / "POSLog.xml") == {
        "documents": 51,
        "transactions": 42,
        "voided_lines": 4,
        "no_sales": 2,
        "weighed_items": 166,
        "items": 548,
        "item_count_elements": 42,
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_reports_show_what_the_file_holds(store, path):
    expected = counted_in_file(path)
    with path.open("rb") as source:
        result = await import_poslog(store, source, path.name)
    assert (result.transactions, result.duplicates) == (expected["documents"], 0)
    assert result.skipped_elements["ItemCount"] == expected["item_count_elements"]
    shown = await shown_by_reports(Reports(store.reader, store.config))
    assert shown == {k: expected[k] for k in shown}


async def test_both_files_add_up_and_a_second_import_stores_nothing(store):
    expected = [counted_in_file(p) for p in FILES]
    for path in FILES:
        with path.open("rb") as source:
            await import_poslog(store, source, path.name)
    reports = Reports(store.reader, store.config)
    shown = await shown_by_reports(reports)
    assert shown == {k: sum(e[k] for e in expected) for k in shown}
    for path, counts in zip(FILES, expected, strict=True):
        with path.open("rb") as source:
            again = await import_poslog(store, source, path.name)
        assert (again.transactions, again.duplicates) == (0, counts["documents"])
    assert await shown_by_reports(reports) == shown


async def test_weights_are_milligrams_of_the_pound_quantities(store):
    with (DATA / "SMALL.xml").open("rb") as source:
        await import_poslog(store, source, "SMALL.xml")
    rows = await query(store.config, "SELECT weight_mg, extended_minor, currency FROM items")
    assert rows == [(190_508, 126, "USD")]  # 0.42 lb of apples for 1.26


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<POSLog><Transaction><RetailStoreID>&lol9;</RetailStoreID></Transaction></POSLog>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE POSLog [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<POSLog><Transaction><RetailStoreID>&secret;</RetailStoreID></Transaction></POSLog>
"""
TRANSACTION = (
    "<Transaction><RetailStoreID>1</RetailStoreID><WorkstationID>2</WorkstationID>"
    "<SequenceNumber>{seq}</SequenceNumber><EndDateTime>2024-03-04T10:00:00</EndDateTime>"
    "<OperatorID>7</OperatorID><CurrencyCode>EUR</CurrencyCode><RetailTransaction>"
    '<LineItem EntryMethod="Scanned"><SequenceNumber>1</SequenceNumber><Sale>'
    "<ItemID>04006381333931</ItemID><ExtendedAmount>{amount}</ExtendedAmount>"
    "<Quantity>1</Quantity></Sale></LineItem></RetailTransaction></Transaction>\n"
)


def document(*transactions: str, tail: str = "</POSLog>\n") -> bytes:
    return (f'<POSLog xmlns="{ARTS}">\n' + "".join(transactions) + tail).encode()


async def stored_transactions(store) -> int:
    _, transactions, _ = await Reports(store.reader, store.config).alert_quality(
        ReportFilter(), ALL
    )
    return transactions


@pytest.mark.parametrize(
    ("hostile", "line"), [(BILLION_LAUGHS, 3), (EXTERNAL_ENTITY, 2)], ids=["laughs", "xxe"]
)
async def test_hostile_xml_is_refused(store, hostile, line):
    with pytest.raises(PosLogError, match="entity") as failure:
        await import_poslog(store, io.BytesIO(hostile), "hostile.xml")
    assert f"hostile.xml: line {line}," in str(failure.value)
    assert await stored_transactions(store) == 0


async def test_malformed_xml_names_its_line_and_nothing_is_half_imported(store):
    broken = document(
        TRANSACTION.format(seq=1, amount="1.00"),
        TRANSACTION.format(seq=2, amount="2.00"),
        tail="<Transaction><RetailStoreID>1</Retail></Transaction>\n</POSLog>\n",
    )
    with pytest.raises(PosLogError) as failure:
        await import_poslog(store, io.BytesIO(broken), "broken.xml")
    assert failure.value.line == 4
    assert "broken.xml: line 4" in str(failure.value) and "malformed" in str(failure.value)
    assert await stored_transactions(store) == 0


async def test_a_bad_value_names_its_line_and_nothing_is_imported(store):
    bad = document(
        TRANSACTION.format(seq=1, amount="1.00"), TRANSACTION.format(seq=2, amount="1.2.3")
    )
    with pytest.raises(PosLogError, match="not an amount") as failure:
        await import_poslog(store, io.BytesIO(bad), "bad.xml")
    assert failure.value.line == 3
    assert await stored_transactions(store) == 0
    good = document(TRANSACTION.format(seq=1, amount="1.00"))
    result = await import_poslog(store, io.BytesIO(good), "good.xml")
    assert result.transactions == 1 and await stored_transactions(store) == 1


async def test_not_poslog_is_refused(store):
    with pytest.raises(PosLogError, match="not an ARTS POSLog document"):
        await import_poslog(store, io.BytesIO(b"<html><body/></html>"), "page.html")


async def test_import_over_grpc(tmp_path):
    config = service_config(tmp_path)
    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            response = await stub.ImportPosLog(
                reporting_pb2.ImportPosLogRequest(
                    filename="SMALL.xml", xml=(DATA / "SMALL.xml").read_bytes()
                ),
                timeout=30,
            )
            assert (response.transactions, response.duplicates) == (2, 0)
            assert response.skipped_elements["CRMCustomVariable"] == 14
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stub.ImportPosLog(
                    reporting_pb2.ImportPosLogRequest(filename="x.xml", xml=BILLION_LAUGHS),
                    timeout=30,
                )
            assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "entity" in failure.value.details()
    finally:
        await running.stop()


def test_cli_import_then_report(tmp_path, capsys):
    db = tmp_path / "cli.db"
    path = DATA / "POSLog.xml"
    expected = counted_in_file(path)
    assert main(["import-poslog", *cli_database(db), str(path)]) == 0
    assert "51 transactions imported" in capsys.readouterr().out
    assert main(["report", "pos-exceptions", *cli_database(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(int(r["transactions"]) for r in rows) == expected["transactions"]
    assert sum(int(r["voids"]) for r in rows) == expected["voided_lines"]
    assert sum(int(r["no_sales"]) for r in rows) == expected["no_sales"]
    assert main(["report", "lane-health", *cli_database(db), "--format", "csv"]) == 0
    lanes = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(int(r["items_weighed"]) for r in lanes) == expected["weighed_items"]
    assert main(["report", "lane-health", *cli_database(db), "--keyed-items"]) == 0
    assert "STONY OSOY BLUEBERR" in capsys.readouterr().out
    # A hostile file fails with exit 1 and says why; the good one was stored once.
    hostile = tmp_path / "hostile.xml"
    hostile.write_bytes(BILLION_LAUGHS)
    assert main(["import-poslog", *cli_database(db), str(hostile), str(path)]) == 1
    captured = capsys.readouterr()
    assert "entity" in captured.err and "0 transactions imported, 51 already" in captured.out


@pytest.mark.sqlite_only
def test_cli_report_needs_an_existing_database(tmp_path, capsys):
    assert main(["report", "shrink", "--db", str(tmp_path / "none.db")]) == 2
    assert "no reporting database" in capsys.readouterr().err


async def test_store_opened_read_only_twice_is_fine(tmp_path):
    config = reporting_config(tmp_path)
    first = await ReportStore.open(config)
    second = await ReportStore.open(config)
    await second.close()
    await first.close()


async def test_a_large_file_streams_in_and_a_late_error_rolls_all_of_it_back(store):
    many = [TRANSACTION.format(seq=n, amount="1.00") for n in range(1, 1201)]
    broken = document(*many, tail="<Transaction>\n</POSLog>\n")
    with pytest.raises(PosLogError, match="line 1203"):
        await import_poslog(store, io.BytesIO(broken), "late.xml")
    assert await stored_transactions(store) == 0
    result = await import_poslog(store, io.BytesIO(document(*many)), "many.xml")
    assert (result.transactions, result.duplicates) == (1200, 0)
    assert await stored_transactions(store) == 1200
