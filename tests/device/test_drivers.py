"""The real drivers end to end through the simulators, over a pty (8N1) and socket:// (7E1)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from lanesight.common.channels import Backoff
from lanesight.device.drivers.base import CommandNotSupported, DeviceUnavailable
from lanesight.device.drivers.printer import PrinterDriver
from lanesight.device.drivers.scale import ScaleDriver, scale_kind
from lanesight.device.drivers.scanner import ScannerDriver
from lanesight.device.drivers.transport import SerialSettings, redact
from lanesight.device.protocols.escpos_status import DrawerOpenLevel, PaperState
from lanesight.device.protocols.scale_types import ScaleStatus
from lanesight.device.readings import (
    BarcodeScanned,
    DeviceKindName,
    DocumentPrinted,
    DrawerReported,
    HealthChanged,
    HealthState,
    PrinterReported,
    ProtocolErrorReported,
    ScaleReported,
)
from lanesight.simulation.devices import (
    SimulatedPrinter,
    SimulatedScale,
    SimulatedScanner,
    make_endpoint,
)

from tests.conftest import assert_eventually


class Readings(list):
    """A sink that keeps what drivers report."""

    async def __call__(self, reading) -> None:
        self.append(reading)

    def of(self, kind):
        return [r for r in self if isinstance(r, kind)]

    def health(self, device_id):
        return [r.state for r in self.of(HealthChanged) if r.device_id == device_id]


def _backoff() -> Backoff:
    return Backoff(initial_s=0.02, max_s=0.1)


async def _run(driver):
    return asyncio.create_task(driver.run())


async def _stop(task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# -- scanners -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "framing"),
    [("pty", "cr"), ("pty", "crlf"), ("socket", "cr"), ("socket", "crlf"), ("pty", "magellan")],
)
async def test_scanner_reads_labels(transport, framing):
    sim = SimulatedScanner(make_endpoint(transport), framing)
    await sim.start()
    readings = Readings()
    driver = ScannerDriver(
        "scanner-1",
        DeviceKindName.SCANNER,
        sim.url,
        readings,
        protocol=framing,
        backoff=_backoff(),
    )
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
        if transport == "socket":
            await sim.endpoint.wait_connected()
        await sim.scan("]E00012345678905")
        await sim.scan("]e00100012345678905310300125039220499")
        await sim.scan("201404309526")
        await assert_eventually(lambda: len(readings.of(BarcodeScanned)) == 3)
        codes = [r.barcode for r in readings.of(BarcodeScanned)]
        assert codes[0].gtin == "00012345678905"
        assert codes[1].label_weight_mg == 1_250_000 and codes[1].label_price_minor == 499
        assert codes[2].label_price_minor == 952 and codes[2].variable_measure
        assert not readings.of(ProtocolErrorReported)
    finally:
        await _stop(task)
        await sim.stop()


async def test_scanner_bad_input_yields_parse_errors_and_it_carries_on():
    sim = SimulatedScanner(make_endpoint("pty"), "cr")
    await sim.start()
    readings = Readings()
    driver = ScannerDriver(
        "scanner-1", DeviceKindName.SCANNER, sim.url, readings, backoff=_backoff(), idle_flush_s=0.1
    )
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
        await sim.send_raw(b"\xff\xfe garbage \x00\r")  # garbage
        await sim.scan("]E00012345678906")  # invalid check digit
        await sim.send_raw(b"]E0012")  # truncated: no terminator, then quiet
        await assert_eventually(lambda: len(readings.of(ProtocolErrorReported)) == 3)
        await sim.send_raw(b"\r")
        await sim.scan("]E00012345678905")
        await assert_eventually(
            lambda: any(r.barcode.check_digit_valid for r in readings.of(BarcodeScanned))
        )
        errors = [r.error for r in readings.of(ProtocolErrorReported)]
        assert errors[0].raw_hex.startswith("fffe")
        assert errors[1].reason == "invalid check digit" and errors[1].raw.startswith(b"]E0")
        assert "truncated" in errors[2].reason
        bad = readings.of(BarcodeScanned)[0].barcode
        assert bad.check_digit_valid is False and bad.gtin == ""
        assert driver.health.state is HealthState.CONNECTED
    finally:
        await _stop(task)
        await sim.stop()


async def test_scanner_reconnects_after_the_line_drops(caplog):
    sim = SimulatedScanner(make_endpoint("socket"), "cr")
    await sim.start()
    readings = Readings()
    driver = ScannerDriver(
        "scanner-1", DeviceKindName.SCANNER, sim.url, readings, backoff=_backoff()
    )
    task = await _run(driver)
    try:
        await sim.endpoint.wait_connected()
        await sim.stop()  # unplugged: the port is gone, every retry fails
        await assert_eventually(lambda: driver._backoff.failures >= 3)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, "only the first failure in a row is logged"
        assert driver.health.state is HealthState.DISCONNECTED
        # Plugged back in on the same port.
        sim2 = SimulatedScanner(make_endpoint("socket"), "cr")
        sim2.endpoint.port = sim.endpoint.port
        await sim2.start()
        try:
            # pyserial flushes input when it opens a port: scan once the driver is back.
            await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
            await sim2.scan("4011")
            await assert_eventually(lambda: readings.of(BarcodeScanned))
            assert readings.health("scanner-1") == [
                HealthState.CONNECTED,
                HealthState.DISCONNECTED,
                HealthState.CONNECTED,
            ]
        finally:
            await sim2.stop()
    finally:
        await _stop(task)


# -- scales -----------------------------------------------------------------------------------


def _scale_driver(protocol, url, readings, role="bagging", **kwargs) -> ScaleDriver:
    bytesize, parity = (8, "N") if protocol == "magellan" else (7, "E")
    return ScaleDriver(
        f"scale-{protocol}",
        scale_kind(role),
        url,
        readings,
        settings=SerialSettings(9600, bytesize, parity, 1),
        protocol=protocol,
        role=role,
        poll_interval_s=0.02,
        response_timeout_s=0.3,
        backoff=_backoff(),
        **kwargs,
    )


def _statuses(readings):
    return [(r.status, r.weight_mg) for r in readings.of(ScaleReported)]


def _last(readings):
    statuses = _statuses(readings)
    return statuses[-1] if statuses else None


@pytest.mark.parametrize(
    ("protocol", "transport"),
    [("8217", "socket"), ("nci", "socket"), ("magellan", "socket"), ("magellan", "pty")],
)
async def test_scale_status_and_stable_weights(protocol, transport):
    bytesize, parity = (8, "N") if protocol == "magellan" else (7, "E")
    # Kilograms and grams carry these weights exactly (pounds would round them).
    sim = SimulatedScale(make_endpoint(transport, bytesize, parity), protocol, unit="kg")
    if protocol == "magellan":
        sim.unit = "g"
    await sim.start()
    readings = Readings()
    driver = _scale_driver(protocol, sim.url, readings, role="produce")
    task = await _run(driver)
    try:
        await assert_eventually(lambda: (ScaleStatus.ZERO, 0) in _statuses(readings))
        steps = [
            (lambda: sim.set_weight(400_000, stable=False), (ScaleStatus.IN_MOTION, 0)),
            (lambda: sim.set_weight(500_000), (ScaleStatus.STABLE, 500_000)),
            (lambda: sim.set_condition(over_capacity=True), (ScaleStatus.OVER_CAPACITY, 0)),
            (lambda: sim.set_condition(under_zero=True), (ScaleStatus.UNDER_ZERO, 0)),
            (lambda: sim.set_condition(not_zeroed=True), (ScaleStatus.NOT_ZEROED, 0)),
            (lambda: sim.set_condition(), (ScaleStatus.STABLE, 500_000)),
        ]
        for change, expected in steps:
            change()
            await assert_eventually(lambda e=expected: _last(readings) == e)
        reading = readings.of(ScaleReported)[-1]
        assert reading.role == "produce" and reading.device_id == f"scale-{protocol}"
        # A stable weight is recorded once, not once per poll.
        polls = sim.requests
        await assert_eventually(lambda: sim.requests > polls + 5)
        assert _statuses(readings).count((ScaleStatus.STABLE, 500_000)) == 2
    finally:
        await _stop(task)
        await sim.stop()


async def test_8217_echo_probe_zero_and_tare():
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "8217")
    await sim.start()
    readings = Readings()
    driver = _scale_driver("8217", sim.url, readings)
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.detail == "echo probe answered")
        assert sim.commands[0] == b"E" and b"F" in sim.commands
        sim.set_weight(300_000)
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.STABLE, 300_000))
        await driver.tare()
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.ZERO, 0))
        sim.set_weight(1_300_000)
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.STABLE, 1_000_000))
        assert readings.of(ScaleReported)[-1].net is True
        await driver.clear_tare()
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.STABLE, 1_300_000))
        await driver.zero()
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.ZERO, 0))
        assert {b"T", b"C", b"Z"} <= set(sim.commands)
    finally:
        await _stop(task)
        await sim.stop()


async def test_nci_zero_and_unsupported_tare():
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "nci", unit="kg")
    await sim.start()
    readings = Readings()
    driver = _scale_driver("nci", sim.url, readings)
    task = await _run(driver)
    try:
        sim.set_weight(200_000)
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.STABLE, 200_000))
        await driver.zero()
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.ZERO, 0))
        assert b"Z\r" in sim.commands
        with pytest.raises(CommandNotSupported):
            await driver.tare()
    finally:
        await _stop(task)
        await sim.stop()


async def test_nci_in_pounds():
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "nci", unit="lb")
    await sim.start()
    readings = Readings()
    driver = _scale_driver("nci", sim.url, readings)
    task = await _run(driver)
    try:
        sim.set_weight(113_398)  # 0.250 lb, the protocols.md vector
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.STABLE, 113_398))
    finally:
        await _stop(task)
        await sim.stop()


def test_7e1_scales_cannot_use_a_pty():
    with pytest.raises(ValueError, match="8N1"):
        make_endpoint("pty", 7, "E")


async def test_scale_that_stops_answering_is_disconnected_then_back():
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "nci")
    await sim.start()
    readings = Readings()
    driver = _scale_driver("nci", sim.url, readings)
    driver.response_timeout_s = 0.05
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
        sim.set_responsive(False)
        await assert_eventually(lambda: driver.health.state is HealthState.DISCONNECTED)
        assert "no reply" in driver.health.detail
        sim.set_responsive(True)
        await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
        assert readings.health("scale-nci") == [
            HealthState.CONNECTED,
            HealthState.DISCONNECTED,
            HealthState.CONNECTED,
        ]
    finally:
        await _stop(task)
        await sim.stop()


async def test_magellan_scanner_scale_scans_on_the_scale_port():
    sim = SimulatedScale(make_endpoint("pty"), "magellan")
    await sim.start()
    readings = Readings()
    driver = _scale_driver("magellan", sim.url, readings)
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
        await sim.scan("]C09289510002308107")
        await sim.scan("]E00012345678905")
        await assert_eventually(lambda: len(readings.of(BarcodeScanned)) == 2)
        code128, upc = (r.barcode for r in readings.of(BarcodeScanned))
        assert (code128.symbology, code128.raw_data) == ("Code 128", "9289510002308107")
        assert upc.gtin == "00012345678905"
    finally:
        await _stop(task)
        await sim.stop()


async def test_scale_garbage_is_reported_and_polling_goes_on():
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "8217")
    await sim.start()
    readings = Readings()
    driver = _scale_driver("8217", sim.url, readings)
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.state is HealthState.CONNECTED)
        await sim.send_raw(b"\x02?\xff\r")  # a status byte with every bit set
        await assert_eventually(lambda: readings.of(ProtocolErrorReported))
        sim.set_weight(700_000)
        await assert_eventually(lambda: _last(readings) == (ScaleStatus.STABLE, 700_000))
        assert readings.of(ProtocolErrorReported)[0].error.raw == b"\x02?\xff\r"
    finally:
        await _stop(task)
        await sim.stop()


# -- printer and drawer -------------------------------------------------------------------------


def _printer(url, readings, level=DrawerOpenLevel.HIGH) -> PrinterDriver:
    return PrinterDriver(
        "printer-1",
        DeviceKindName.PRINTER,
        url,
        readings,
        drawer_id="drawer-1",
        drawer_open_level=level,
        poll_interval_s=0.05,
        response_timeout_s=0.1,
        backoff=_backoff(),
    )


def _paper(readings):
    statuses = readings.of(PrinterReported)
    return statuses[-1].status if statuses else None


@pytest.mark.parametrize("transport", ["socket", "tcp", "pty"])
async def test_printer_status_decoding_end_to_end(transport):
    sim = SimulatedPrinter(make_endpoint(transport))
    await sim.start()
    readings = Readings()
    driver = _printer(sim.url, readings)
    task = await _run(driver)
    try:
        await assert_eventually(lambda: _paper(readings) and _paper(readings).reachable)
        assert _paper(readings).paper is PaperState.ADEQUATE
        sim.set_paper("near_end")
        await assert_eventually(lambda: _paper(readings).paper is PaperState.NEAR_END)
        sim.set_paper("out")
        await assert_eventually(lambda: _paper(readings).paper is PaperState.OUT)
        sim.set_cover_open(True)
        await assert_eventually(lambda: _paper(readings).cover_open)
        assert _paper(readings).offline is True
        sim.set_responsive(False)  # switched off: no answer means unknown, not fine
        await assert_eventually(lambda: not _paper(readings).reachable)
        assert _paper(readings).paper is PaperState.UNKNOWN
        assert driver.health.state is HealthState.ERROR
        assert readings.of(DrawerReported)[-1].is_open is None
        sim.set_responsive(True)
        await assert_eventually(lambda: _paper(readings).reachable)
        assert driver.health.state is HealthState.CONNECTED
    finally:
        await _stop(task)
        await sim.stop()


@pytest.mark.parametrize("level", [DrawerOpenLevel.HIGH, DrawerOpenLevel.LOW])
async def test_drawer_kick_and_state_with_polarity(level):
    sim = SimulatedPrinter(make_endpoint("socket"), drawer_open_level=level.value)
    await sim.start()
    readings = Readings()
    driver = _printer(sim.url, readings, level)
    task = await _run(driver)
    try:
        await assert_eventually(lambda: readings.of(DrawerReported))
        assert readings.of(DrawerReported)[-1].is_open is False
        await driver.kick_drawer(2)
        await assert_eventually(lambda: readings.of(DrawerReported)[-1].is_open is True)
        assert sim.drawer_kicks == [(0, 0x32, 0x32)]
        sim.close_drawer()
        await assert_eventually(lambda: readings.of(DrawerReported)[-1].is_open is False)
        assert [r.is_open for r in readings.of(DrawerReported)] == [False, True, False]
        with pytest.raises(ValueError):
            await driver.kick_drawer(3)
    finally:
        await _stop(task)
        await sim.stop()


async def test_printing_an_audit_slip_and_refusing_without_paper():
    sim = SimulatedPrinter(make_endpoint("socket"))
    await sim.start()
    readings = Readings()
    driver = _printer(sim.url, readings)
    task = await _run(driver)
    try:
        await assert_eventually(lambda: _paper(readings) and _paper(readings).reachable)
        await driver.print_document(["Lane 3", "Item not scanned?"], "audit_slip", "AUDIT SLIP")
        await assert_eventually(lambda: sim.documents == 1)
        assert "AUDIT SLIP" in sim.printed_text() and "Item not scanned?" in sim.printed_text()
        assert readings.of(DocumentPrinted) == [DocumentPrinted("printer-1", "audit_slip")]
        sim.set_paper("out")
        await assert_eventually(lambda: _paper(readings).paper is PaperState.OUT)
        with pytest.raises(DeviceUnavailable, match="paper out"):
            await driver.print_document(["x"], "receipt")
    finally:
        await _stop(task)
        await sim.stop()


def test_urls_are_shown_without_credentials():
    assert redact("rfc2217://user:secret@10.0.0.5:4001") == "rfc2217://10.0.0.5:4001"
    assert redact("/dev/ttyUSB0") == "/dev/ttyUSB0"
