"""Every fact and test vector of ../shared/protocols.md, one test each (parsers and decoders)."""

from __future__ import annotations

import pytest
from lanesight.device.drivers.printer import render_drawer_kick
from lanesight.device.protocols import escpos_status, magellan, mettler_8217, nci
from lanesight.device.protocols.barcodes import classify_plu, decode_barcode
from lanesight.device.protocols.escpos_status import DrawerOpenLevel, PaperState
from lanesight.device.protocols.framing import ParseError
from lanesight.device.protocols.scale_types import (
    EchoAck,
    EchoData,
    ScaleFlag,
    ScaleObservation,
    ScaleStatus,
    UnknownCommand,
)
from lanesight.device.protocols.scanner import LineScannerParser, ScanFrame

# -- Mettler Toledo 8217 ---------------------------------------------------------------------


def _one(items):
    assert len(items) == 1, items
    return items[0]


def test_8217_commands_are_single_bytes_without_terminator():
    assert mettler_8217.CMD_WEIGHT == b"W"
    assert mettler_8217.CMD_ZERO == b"Z"
    assert mettler_8217.CMD_TARE == b"T"
    assert mettler_8217.CMD_CLEAR_TARE == b"C"


def test_8217_stable_kilograms():
    obs = _one(mettler_8217.Mettler8217Parser().feed(b"\x0201.234\r"))
    assert obs == ScaleObservation(0, ScaleStatus.STABLE, 1_234_000, False, frozenset())


def test_8217_pounds_and_net_marker():
    obs = _one(mettler_8217.Mettler8217Parser().feed(b"\x02001.25N\r"))
    assert obs.status is ScaleStatus.STABLE
    assert obs.weight_mg == 566_990  # 1.25 lb = 566 990.4625 mg
    assert obs.net is True


@pytest.mark.parametrize(
    ("frame", "status", "flags"),
    [
        (b"\x02?A\r", ScaleStatus.IN_MOTION, {ScaleFlag.MOTION}),
        (b"\x02?B\r", ScaleStatus.OVER_CAPACITY, {ScaleFlag.OVER_CAPACITY}),
        (b"\x02?D\r", ScaleStatus.UNDER_ZERO, {ScaleFlag.UNDER_ZERO}),
        (b"\x02?H\r", ScaleStatus.NOT_ZEROED, {ScaleFlag.OUTSIDE_ZERO_RANGE}),
        (b"\x02?P\r", ScaleStatus.ZERO, {ScaleFlag.CENTER_OF_ZERO}),
        # Recorded from a real scale: motion + center of zero.
        (b"\x02?Q\r", ScaleStatus.IN_MOTION, {ScaleFlag.MOTION, ScaleFlag.CENTER_OF_ZERO}),
    ],
)
def test_8217_status_vectors(frame, status, flags):
    obs = _one(mettler_8217.Mettler8217Parser().feed(frame))
    assert obs.status is status
    assert obs.flags == frozenset(flags)
    assert obs.weight_mg is None


def test_8217_status_decides_on_low_five_bits_only():
    # 0x21 and 0xE1 have the same low five bits as "A" (0x41).
    for byte in (0x21, 0xE1, 0x01):
        obs = _one(mettler_8217.Mettler8217Parser().feed(b"\x02?" + bytes([byte]) + b"\r"))
        assert obs.flags == frozenset({ScaleFlag.MOTION})


def test_8217_echo_probe():
    parser = mettler_8217.Mettler8217Parser()
    items = parser.feed(b"\x02E\rhello")
    assert items == [EchoAck(0), EchoData(3, b"hello")]
    assert mettler_8217.CMD_ECHO == b"E" and mettler_8217.CMD_END_ECHO == b"F"
    parser.end_echo()
    assert parser.feed(b"\x0200.500\r")[0].weight_mg == 500_000


def test_8217_serial_line_is_9600_7e1():
    from lanesight.simulation.devices.lane import SCALE_LINE

    assert SCALE_LINE["8217"] == (7, "E")


# -- NCI ---------------------------------------------------------------------------------------


def test_nci_commands_end_in_cr():
    assert (nci.CMD_WEIGHT, nci.CMD_STATUS, nci.CMD_ZERO) == (b"W\r", b"S\r", b"Z\r")


def test_nci_weight_with_status():
    obs = _one(nci.NciParser().feed(b"\n00.250LB\r\nS00\r\x03"))
    assert obs.status is ScaleStatus.STABLE
    assert obs.weight_mg == 113_398  # 0.250 lb
    assert obs.flags == frozenset()


@pytest.mark.parametrize(
    ("frame", "status", "flag"),
    [
        (b"\nS10\r\x03", ScaleStatus.IN_MOTION, ScaleFlag.MOTION),
        (b"\nS20\r\x03", ScaleStatus.ZERO, ScaleFlag.AT_ZERO),
        (b"\nS02\r\x03", ScaleStatus.OVER_CAPACITY, ScaleFlag.OVER_CAPACITY),
    ],
)
def test_nci_status_vectors(frame, status, flag):
    obs = _one(nci.NciParser().feed(frame))
    assert obs.status is status
    assert flag in obs.flags


def test_nci_status_bits():
    # Byte 1: bit2 RAM, bit3 EEPROM; byte 2: bit0 under capacity, bit2 ROM, bit3 calibration.
    assert nci.decode_status(b"40") == frozenset({ScaleFlag.RAM_ERROR})
    assert nci.decode_status(b"80") == frozenset({ScaleFlag.EEPROM_ERROR})
    assert nci.decode_status(b"01") == frozenset({ScaleFlag.UNDER_ZERO})
    assert nci.decode_status(b"04") == frozenset({ScaleFlag.ROM_ERROR})
    assert nci.decode_status(b"08") == frozenset({ScaleFlag.CALIBRATION_ERROR})
    # Bit 6 of byte 2: another status byte follows.
    assert nci.decode_status(b"0p0") == frozenset()
    assert isinstance(nci.decode_status(b"0p"), str)
    obs = _one(nci.NciParser().feed(b"\nS01\r\x03"))
    assert obs.status is ScaleStatus.UNDER_ZERO
    obs = _one(nci.NciParser().feed(b"\nS40\r\x03"))
    assert obs.status is ScaleStatus.NOT_READY


def test_nci_unknown_command():
    assert _one(nci.NciParser().feed(b"\n?\r\x03")) == UnknownCommand(0)
    assert nci.UNKNOWN_COMMAND_REPLY == b"\n?\r\x03"


# -- Magellan single cable ----------------------------------------------------------------------


def test_magellan_scan_vector_code128():
    frame = _one(magellan.MagellanParser().feed(b"S08B39289510002308107\r"))
    assert frame == ScanFrame(0, "9289510002308107", "]C0", "B3")


@pytest.mark.parametrize(
    ("label_id", "name"),
    [
        ("A", "UPC-A"),
        ("E", "UPC-E"),
        ("F", "EAN-13"),
        ("FF", "EAN-8"),
        ("B1", "Code 39"),
        ("B2", "ITF"),
        ("B3", "Code 128"),
        ("R4", "GS1 DataBar"),
        ("RX", "GS1 DataBar Expanded"),
    ],
)
def test_magellan_label_ids(label_id, name):
    frame = _one(magellan.MagellanParser().feed(b"S08" + label_id.encode() + b"12345670\r"))
    assert frame.magellan_label_id == label_id
    assert frame.data == "12345670"
    assert magellan.LABEL_IDS[label_id][0] == name


def test_magellan_s11_weight_digits():
    hundredths_lb = _one(magellan.MagellanParser().feed(b"S110125\r"))
    assert hundredths_lb.weight_mg == 566_990  # 1.25 lb
    grams = _one(magellan.MagellanParser().feed(b"S1100260\r"))
    assert grams.weight_mg == 260_000


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (b"S140\r", ScaleStatus.NOT_ZEROED),
        (b"S141\r", ScaleStatus.IN_MOTION),
        (b"S142\r", ScaleStatus.OVER_CAPACITY),
        (b"S143\r", ScaleStatus.ZERO),
        (b"S145\r", ScaleStatus.UNDER_ZERO),
    ],
)
def test_magellan_monitor_vectors(frame, status):
    assert _one(magellan.MagellanParser().feed(frame)).status is status


def test_magellan_monitor_stable_weight():
    obs = _one(magellan.MagellanParser().feed(b"S14400260\r"))
    assert (obs.status, obs.weight_mg) == (ScaleStatus.STABLE, 260_000)


def test_magellan_prefix_and_suffix_are_configurable():
    parser = magellan.MagellanParser(prefix=b"\x02", suffix=b"\n")
    assert _one(parser.feed(b"\x0214400260\n")).weight_mg == 260_000


# -- scanners -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\n"])
def test_scanner_terminators(ending):
    items = LineScannerParser().feed(b"]E00123601057072" + ending + b"4011" + ending)
    assert [(i.symbology_identifier, i.data) for i in items] == [
        ("]E0", "0123601057072"),
        ("", "4011"),
    ]


def test_upc_a_arrives_as_13_digits_with_e0():
    code = decode_barcode("0123601057072", "]E0")
    assert code.symbology == "UPC-A"
    assert code.gtin == "00123601057072"
    assert code.check_digit_valid


@pytest.mark.parametrize(
    ("aim", "data", "symbology"),
    [
        ("]E0", "4006381333931", "EAN-13"),
        # ISO/IEC 15424: ]E1/]E2 carry the add-on alone, ]E3 main code + add-on.
        ("]E1", "12", "EAN/UPC 2-digit add-on"),
        ("]E2", "12345", "EAN/UPC 5-digit add-on"),
        ("]E3", "400638133393112", "EAN-13 + 2-digit add-on"),
        ("]E4", "96385074", "EAN-8"),
        ("]I1", "10012345678902", "ITF-14"),
        ("]Q1", "https://example.com", "QR Code"),
    ],
)
def test_aim_symbologies(aim, data, symbology):
    code = decode_barcode(data, aim)
    assert code.symbology == symbology
    assert not code.problem


def test_gs1_128_with_fnc1_as_gs():
    code = decode_barcode("0100012345678905\x1d10ABC123\x1d3103000500", "]C1")
    assert code.symbology == "GS1-128"
    assert code.gtin == "00012345678905"
    assert code.gs1_elements == (
        ("01", "00012345678905"),
        ("10", "ABC123"),
        ("3103", "000500"),
    )
    assert code.label_weight_mg == 500_000


@pytest.mark.parametrize("aim", ["]d2", "]Q3"])
def test_gs1_datamatrix_and_qr(aim):
    code = decode_barcode("0109501101530003\x1d17251231", aim)
    assert code.gtin == "09501101530003"
    assert ("17", "251231") in code.gs1_elements


@pytest.mark.parametrize(
    ("data", "item", "price_minor"),
    [
        ("201404309526", "01404", 952),
        ("200065109001", "00065", 900),
        ("206141306005", "06141", 600),
    ],
)
def test_us_price_embedded_labels(data, item, price_minor):
    code = decode_barcode(data, region="us")
    assert code.variable_measure
    assert code.variable_measure_item == item
    assert (code.label_price_minor, code.currency_code) == (price_minor, "USD")
    assert code.check_digit_valid
    # The same label as EAN-13 with the ]E0 identifier.
    assert decode_barcode("0" + data, "]E0").label_price_minor == price_minor


def test_us_price_embedded_bad_price_check_digit():
    # Item 01404, price 0952 with verifier 4 instead of 3, final check digit made valid.
    from stdnum import ean

    body = "2014044" + "0952"
    code = decode_barcode(body + ean.calc_check_digit(body), region="us")
    assert code.problem == "invalid price check digit"
    assert not code.check_digit_valid and code.label_price_minor is None


@pytest.mark.parametrize(
    ("region", "data", "weight_mg", "price_minor", "currency"),
    [
        ("gb", "2011122912346", 0, 1234, "GBP"),
        ("de", "2811111068708", 6_870_000, None, ""),
        ("de", "2211114002394", 0, 239, "EUR"),
    ],
)
def test_european_variable_measure_rules(region, data, weight_mg, price_minor, currency):
    code = decode_barcode(data, region=region)
    assert code.variable_measure
    assert code.label_weight_mg == weight_mg
    assert code.label_price_minor == price_minor
    assert code.currency_code == currency


def test_databar_expanded_on_produce():
    code = decode_barcode("0100012345678905310300125039220499", "]e0")
    assert code.gtin == "00012345678905"
    assert code.label_weight_mg == 1_250_000
    assert (code.label_price_minor, code.currency_code) == (499, "USD")


@pytest.mark.parametrize(
    ("plu", "organic", "problem"),
    [
        ("3000", False, ""),
        ("4011", False, ""),
        ("4999", False, ""),
        ("94011", True, ""),
        ("93000", True, ""),
        ("2999", False, "PLU outside 3000-4999"),
        ("84011", False, "PLU prefix 8 is reserved"),
        ("95000", False, "5-digit PLU must be 9 + 3000-4999 (organic)"),
    ],
)
def test_plu_rules(plu, organic, problem):
    assert classify_plu(plu) == (organic, problem)
    code = decode_barcode(plu)
    assert code.plu == ("" if problem else plu)
    assert code.plu_organic == organic


@pytest.mark.parametrize("data", ["96385074", "012345678905", "4006381333931", "10012345678902"])
def test_gtin_8_12_13_14_check_digits_validate(data):
    code = decode_barcode(data)
    assert code.gtin == data.zfill(14) and code.check_digit_valid


@pytest.mark.parametrize("data", ["96385075", "012345678906", "4006381333932", "10012345678903"])
def test_gtin_bad_check_digits(data):
    code = decode_barcode(data)
    assert code.problem == "invalid check digit" and not code.check_digit_valid


# -- ESC/POS -------------------------------------------------------------------------------------


def test_drawer_kick_bytes():
    assert render_drawer_kick(2) == bytes.fromhex("1b70003232")
    assert render_drawer_kick(5) == bytes.fromhex("1b70013232")


def test_dle_eot_commands():
    assert [escpos_status.status_query(n) for n in (1, 2, 3, 4)] == [
        b"\x10\x04\x01",
        b"\x10\x04\x02",
        b"\x10\x04\x03",
        b"\x10\x04\x04",
    ]


def _status(printer=0x12, cause=0x12, errors=0x12, paper=0x12):
    return escpos_status.decode_status_replies({1: printer, 2: cause, 3: errors, 4: paper})


def test_dle_eot_1_printer_status():
    online = _status(printer=0x12)
    assert online.offline is False and online.drawer_pin3_high is False
    pin3 = _status(printer=0x16)
    assert pin3.drawer_pin3_high is True
    assert _status(printer=0x1A).offline is True


def test_dle_eot_2_offline_cause():
    assert _status(cause=0x16).cover_open is True
    paper_end = _status(cause=0x32)
    assert paper_end.paper_end_stop is True and paper_end.cover_open is False
    assert _status(cause=0x1A).feed_button is True
    assert _status(cause=0x52).error is True


def test_dle_eot_3_error_cause():
    assert _status(errors=0x1A).cutter_error is True
    assert _status(errors=0x32).unrecoverable_error is True
    assert _status(errors=0x52).auto_recoverable_error is True
    assert _status(errors=0x1A).error is True


def test_dle_eot_4_roll_paper():
    assert _status(paper=0x1E).paper is PaperState.NEAR_END
    assert _status(paper=0x72).paper is PaperState.OUT
    assert _status(paper=0x12).paper is PaperState.ADEQUATE


def test_status_reply_fixed_bits_are_checked():
    with pytest.raises(escpos_status.StatusReplyError):
        _status(printer=0xFF)
    with pytest.raises(escpos_status.StatusReplyError):
        _status(paper=0x00)


def test_no_answer_is_unknown_not_fine():
    status = escpos_status.decode_status_replies({1: 0x12, 2: None, 3: None, 4: None})
    assert status.reachable is False
    assert status.paper is PaperState.UNKNOWN
    assert status.cover_open is None and status.offline is None
    assert escpos_status.decode_gs_r_paper(None) is PaperState.UNKNOWN


def test_gs_r_paper_and_drawer():
    assert escpos_status.decode_gs_r_paper(0x03) is PaperState.NEAR_END
    assert escpos_status.decode_gs_r_paper(0x0C) is PaperState.OUT
    assert escpos_status.decode_gs_r_paper(0x00) is PaperState.ADEQUATE
    assert escpos_status.decode_gs_r_drawer(0x01) is True
    assert escpos_status.decode_gs_r_drawer(0x00) is False


def test_drawer_polarity_is_configurable():
    pin3_high = _status(printer=0x16)
    assert pin3_high.drawer_open(DrawerOpenLevel.HIGH) is True
    assert pin3_high.drawer_open(DrawerOpenLevel.LOW) is False
    assert _status(printer=0x12).drawer_open(DrawerOpenLevel.LOW) is True


def test_python_escpos_paper_status_calls_silence_adequate_but_we_do_not():
    """protocols.md: python-escpos reports "adequate" for a silent printer; we say unknown."""
    from escpos.printer import Dummy

    silent = Dummy()
    silent._read = lambda: b""  # a printer that never answers
    try:
        reported = silent.paper_status()
    except Exception:  # some versions raise instead; either way not a decoded state
        reported = None
    assert reported in (2, None)  # 2 = "adequate" in python-escpos
    assert escpos_status.decode_status_replies({}).paper is PaperState.UNKNOWN


# -- serial transports ------------------------------------------------------------------------


def test_linux_pty_refuses_7e1():
    """protocols.md: a pty is 8N1 only; reconfiguring to 7E1 fails with Invalid argument."""
    import os
    import termios

    import serial

    master, slave = os.openpty()
    try:
        port = serial.Serial(os.ttyname(slave), 9600)
        with pytest.raises((serial.SerialException, termios.error, OSError)) as info:
            port.bytesize, port.parity = 7, "E"
        assert "Invalid argument" in str(info.value) or "22" in str(info.value)
        port.close()
    finally:
        os.close(master)
        os.close(slave)


def test_every_parse_error_is_a_value_with_an_offset():
    items = mettler_8217.Mettler8217Parser().feed(b"xx\x02?\xff\r")
    assert all(isinstance(item, ParseError) for item in items)
    assert [item.offset for item in items] == [0, 2]
