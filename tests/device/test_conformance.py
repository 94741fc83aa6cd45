"""Conformance with manufacturers' manuals and independent drivers (sources in docs/device.md)."""

from __future__ import annotations

import pytest
from lanesight.device.config import DeviceConfig, PeripheralConfig
from lanesight.device.drivers.scanner import ScannerDriver
from lanesight.device.lane_events import to_lane_event
from lanesight.device.protocols import magellan, mettler_8217, nci
from lanesight.device.protocols.barcodes import DecodedBarcode, decode_barcode
from lanesight.device.protocols.framing import ParseError
from lanesight.device.protocols.scale_types import ScaleFlag, ScaleStatus
from lanesight.device.protocols.variable_measure import VariableMeasureRule
from lanesight.device.readings import (
    BarcodeScanned,
    DeviceKindName,
    ProtocolErrorReported,
    ScaleReported,
)
from lanesight.simulation.devices import SimulatedScale, SimulatedScanner, make_endpoint
from pydantic import ValidationError

from tests.conftest import assert_eventually
from tests.device.test_drivers import Readings, _backoff, _run, _scale_driver, _stop


def _one(items):
    assert len(items) == 1, items
    return items[0]


def _magellan_label(frame: bytes, region: str = "us") -> DecodedBarcode:
    """What the scanner driver decodes from one Magellan S08 frame."""
    label = _one(magellan.MagellanParser().feed(frame))
    form = magellan.LABEL_IDS[label.magellan_label_id][0]
    return decode_barcode(label.data, label.symbology_identifier, region, symbology=form)


# -- Magellan label identifiers --------------------------------------------------------------
# Datalogic Magellan 3200VSi/3450VSi/8300/8500/9800i Product Reference Guides, "Datalogic
# Handheld Data Format Requirements": A UPC-A (13 with prefix), E UPC-E (9), F EAN-13 (14),
# FF EAN-8 (10), each also with a 2-digit, 5-digit or Code 128 (8100-8102) supplement;
# R4 GS1 DataBar. The example labels below are the guides' own.


@pytest.mark.parametrize(
    ("frame", "symbology", "gtin", "add_on"),
    [
        (b"S08A060992011187\r", "UPC-A", "00060992011187", ""),
        (b"S08A06099201118712\r", "UPC-A + 2-digit add-on", "00060992011187", "12"),
        (b"S08A06099201118712345\r", "UPC-A + 5-digit add-on", "00060992011187", "12345"),
        (b"S08E09988750\r", "UPC-E", "00099887000050", ""),
        (b"S08E0998875012\r", "UPC-E + 2-digit add-on", "00099887000050", "12"),
        (b"S08E0998875012345\r", "UPC-E + 5-digit add-on", "00099887000050", "12345"),
        (b"S08F1101234567891\r", "EAN-13", "01101234567891", ""),
        (b"S08F110123456789112\r", "EAN-13 + 2-digit add-on", "01101234567891", "12"),
        (b"S08F110123456789112345\r", "EAN-13 + 5-digit add-on", "01101234567891", "12345"),
        (b"S08FF00210126\r", "EAN-8", "00000000210126", ""),
        (b"S08FF0021012612\r", "EAN-8 + 2-digit add-on", "00000000210126", "12"),
        (b"S08FF0021012612345\r", "EAN-8 + 5-digit add-on", "00000000210126", "12345"),
    ],
)
def test_magellan_ean_upc_label_ids(frame, symbology, gtin, add_on):
    code = _magellan_label(frame)
    assert (code.symbology, code.gtin, code.add_on) == (symbology, gtin, add_on)
    assert code.check_digit_valid and not code.problem


def test_magellan_upc_e_is_expanded_never_read_as_ean_8():
    # Issue 13: 09988750 is UPC-E for UPC-A 099887000050, not the GTIN-8 00000009988750.
    assert _magellan_label(b"S08E09988750\r").gtin == "00099887000050"
    # A valid UPC-E (UPC-A 012000003455) whose last digit is a UPC-E check digit.
    assert _magellan_label(b"S08E01234505\r").gtin == "00012000003455"
    bad = _magellan_label(b"S08E09988751\r")
    assert (bad.gtin, bad.check_digit_valid) == ("", False)
    assert "check digit" in bad.problem


@pytest.mark.parametrize(
    ("frame", "ai", "value"),
    [
        (b"S08A0609920111878100000951\r", "8100", "000951"),
        (b"S08E099887508101000951\r", "8101", "000951"),
        (b"S08F11012345678918100000951\r", "8100", "000951"),
        (b"S08FF002101268102000951\r", "8102", "000951"),
    ],
)
def test_magellan_code_128_supplement(frame, ai, value):
    code = _magellan_label(frame)
    assert code.gtin and not code.problem
    assert code.gs1_elements == ((ai, value),)
    assert code.symbology.endswith("Code 128 supplement")


def test_magellan_databar_r4_is_a_gs1_element_string():
    code = _magellan_label(b"S08R40100012345678905\r")
    assert (code.symbology_identifier, code.gtin) == ("]e0", "00012345678905")
    # The guides' own example, R40101044123456789, has a wrong GTIN check digit: rejected.
    bad = _magellan_label(b"S08R40101044123456789\r")
    assert (bad.gtin, bad.check_digit_valid) == ("", False)


@pytest.mark.parametrize(
    "frame", [b"S08A0609920111871\r", b"S08F1101234567891123\r", b"S08E0998875\r"]
)
def test_magellan_wrong_lengths_are_rejected(frame):
    code = _magellan_label(frame)
    assert code.problem and not code.gtin and not code.add_on


# -- AIM symbology identifiers (ISO/IEC 15424; biip.symbology's E modifiers) ----------------


def test_e0_with_14_digits_is_not_ean_13():
    code = decode_barcode("00012345678905", "]E0")
    assert code.problem.startswith("]E0 carries") and not code.gtin


@pytest.mark.parametrize(
    ("data", "gtin", "add_on", "symbology"),
    [
        ("400638133393112", "04006381333931", "12", "EAN-13 + 2-digit add-on"),
        ("400638133393112345", "04006381333931", "12345", "EAN-13 + 5-digit add-on"),
        # Datalogic's ]E0 UPC-A example (13 digits with the leading 0) plus add-ons.
        ("006099201118712", "00060992011187", "12", "UPC-A + 2-digit add-on"),
        ("006099201118754499", "00060992011187", "54499", "UPC-A + 5-digit add-on"),
        ("0998875012", "00099887000050", "12", "UPC-E + 2-digit add-on"),
    ],
)
def test_e3_is_main_code_and_add_on(data, gtin, add_on, symbology):
    code = decode_barcode(data, "]E3")
    assert (code.gtin, code.add_on, code.symbology) == (gtin, add_on, symbology)


@pytest.mark.parametrize(("aim", "data"), [("]E1", "12"), ("]E2", "54499")])
def test_e1_e2_carry_the_add_on_alone(aim, data):
    code = decode_barcode(data, aim)
    assert (code.gtin, code.add_on, code.problem) == ("", data, "")


@pytest.mark.parametrize(
    ("aim", "data"),
    [("]E1", "400638133393112"), ("]E2", "400638133393112345"), ("]E3", "4006381333931")],
)
def test_add_on_identifiers_with_the_wrong_length_are_rejected(aim, data):
    code = decode_barcode(data, aim)
    assert code.problem and not code.gtin and not code.add_on


def test_e0_upc_e_as_8_digits_and_e4_only_ean_8():
    assert decode_barcode("09988750", "]E0").gtin == "00099887000050"
    assert decode_barcode("0123601057072", "]E4").problem


def test_add_on_reaches_the_lane_event():
    event = to_lane_event(BarcodeScanned("scanner-1", decode_barcode("400638133393112", "]E3")))
    assert (event.barcode_read.gtin, event.barcode_read.add_on) == ("04006381333931", "12")


# -- variable measure: a rejected label carries nothing; markets --------------------------


def test_invalid_price_embedded_label_carries_nothing():
    # 2 01404 4 0952 C: verifier 4 where the GS1 price check digit of 0952 is 3.
    from stdnum import ean

    body = "2014044" + "0952"
    code = decode_barcode(body + ean.calc_check_digit(body), region="us")
    assert code.problem == "invalid price check digit"
    assert code == DecodedBarcode(
        code.raw_data, "", "UPC-A", check_digit_valid=False, problem=code.problem
    )


@pytest.mark.parametrize(
    ("data", "item", "price_minor"),
    [
        # GS1 UK: 20XXX RR V PPPP C and 28XXX RR V PPPP C, price in pence.
        ("2011122912346", "11122", 1234),
        ("2812345912348", "12345", 1234),
        ("2812345105993", "12345", 599),
    ],
)
def test_gs1_uk_prefixes_20_and_28_carry_a_price(data, item, price_minor):
    code = decode_barcode(data, region="gb")
    assert (code.variable_measure_item, code.label_price_minor, code.currency_code) == (
        item,
        price_minor,
        "GBP",
    )


def test_gs1_uk_bad_price_verifier_carries_nothing():
    code = decode_barcode("2012345012349", region="gb")
    assert code.problem == "invalid price check digit"
    assert (code.gtin, code.label_price_minor, code.variable_measure_item) == ("", None, "")


def test_prefix_28_means_what_the_market_says():
    # Germany (biip's GS1 Germany rules): 28 is a weight in kg, not a price.
    de = decode_barcode("2811111068708", region="de")
    assert (de.label_weight_mg, de.label_price_minor) == (6_870_000, None)


def test_variable_measure_rules_are_checked():
    with pytest.raises(ValueError, match="12 characters"):
        VariableMeasureRule("20", "price", "PPPPPPPCVVV", 2)
    with pytest.raises(ValueError, match="prefix"):
        VariableMeasureRule("2x", "price", "PPPPPPPCVVVV", 2)


# -- NCI (Weigh-Tronix SCP-01 8408-14788-01; NCI 6702 and Ohaus manuals) ----------------------


@pytest.mark.parametrize(
    ("frame", "weight_mg"),
    [
        (b"\n0001.25LB\r\n00\r\x03", 566_990),  # SCP-01: no "S", 4.2 digits
        (b"\n01.250LB\r\nS00\r\x03", 566_990),  # SCP-02 form with "S"
        (b"\n0001.25lb\r\nS00\r\x03", 566_990),  # ANSI lower-case units
        (b"\n1LB 04.5OZ\r\nS00\r\x03", 581_165),  # lb-oz: 20.5 oz
        (b"\n01lb 04.5oz\r\n00\r\x03", 581_165),  # SCP-01's xxlb<SP>xx.xoz
        (b"\n1LB 04.50OZ\r\nS00\r\x03", 581_165),  # DIVA high resolution x.xx oz
        (b"\n0.567KG\r\n00\r\x03", 567_000),
    ],
)
def test_nci_weight_formats(frame, weight_mg):
    obs = _one(nci.NciParser().feed(frame))
    assert (obs.status, obs.weight_mg) == (ScaleStatus.STABLE, weight_mg)


def test_nci_status_prefix_detected_or_configured():
    assert _one(nci.NciParser().feed(b"\n20\r\x03")).status is ScaleStatus.ZERO
    assert _one(nci.NciParser().feed(b"\nS20\r\x03")).status is ScaleStatus.ZERO
    assert isinstance(_one(nci.NciParser(status_prefix=True).feed(b"\n20\r\x03")), ParseError)
    assert isinstance(_one(nci.NciParser(status_prefix=False).feed(b"\nS20\r\x03")), ParseError)


def test_nci_third_status_byte_net_and_initial_zero_error():
    # Byte 2 bit 6 announces byte 3; byte 3 bit 2 net weight, bit 3 initial zero error.
    net = _one(nci.NciParser().feed(b"\n01.250LB\r\nS0p4\r\x03"))
    assert (net.weight_mg, net.net) == (566_990, True)
    gross = _one(nci.NciParser().feed(b"\n01.250LB\r\nS0p0\r\x03"))
    assert gross.net is False
    zero_error = _one(nci.NciParser().feed(b"\nS0p8\r\x03"))
    assert zero_error.status is ScaleStatus.NOT_ZEROED
    assert ScaleFlag.CANNOT_FIND_ZERO in zero_error.flags


def test_nci_a_status_byte_may_announce_a_fourth():
    # Ohaus's NCI table defines byte 4; bit 6 of byte 3 announces it.
    obs = _one(nci.NciParser().feed(b"\n01.250LB\r\nS0pt0\r\x03"))
    assert (obs.weight_mg, obs.net) == (566_990, True)
    # Announced but missing, or more than announced: an error with the offset.
    for frame in (b"\nS0pt\r\x03", b"\nS0p40\r\x03", b"\nS000\r\x03"):
        zero, error = nci.NciParser().feed(b"\n20\r\x03" + frame)
        assert zero.status is ScaleStatus.ZERO
        assert isinstance(error, ParseError) and error.offset == 5, error


def test_nci_status_bytes_have_bits_4_and_5_set():
    error = _one(nci.NciParser().feed(b"\n!0\r\x03"))
    assert isinstance(error, ParseError) and "bits 4 and 5" in error.reason


def test_nci_display_bars_are_no_weight():
    obs = _one(nci.NciParser().feed(b"\n^^^^^^LB\r\nS02\r\x03"))
    assert (obs.status, obs.weight_mg) == (ScaleStatus.OVER_CAPACITY, None)


def test_nci_encoder_speaks_both_forms_and_lb_oz():
    for prefix in (True, False):
        for unit in ("lb", "kg", "lb-oz"):
            frame = nci.encode_reply(581_165, frozenset(), unit, net=True, status_prefix=prefix)
            obs = _one(nci.NciParser(status_prefix=prefix).feed(frame))
            assert obs.net and abs(obs.weight_mg - 581_165) < 3_000, (frame, obs)


# -- Mettler Toledo 8217 (Mettler Toledo DIVA service manual, 8217 command table) ----------


@pytest.mark.parametrize(
    ("frame", "weight_mg", "net"),
    [
        (b"\x0201.25\r", 566_990, False),  # STX WW.WW CR: gross pounds
        (b"\x0201.25N\r", 566_990, True),  # STX WW.WWN CR: net pounds
        (b"\x02001.25\r", 566_990, False),  # STX 0WW.WW CR
        (b"\x0201.250\r", 1_250_000, False),  # STX WW.WWW CR: kilograms
    ],
)
def test_8217_weight_fields(frame, weight_mg, net):
    obs = _one(mettler_8217.Mettler8217Parser().feed(frame))
    assert (obs.weight_mg, obs.net) == (weight_mg, net)


def test_8217_status_byte_bit_5_is_net():
    obs = _one(mettler_8217.Mettler8217Parser().feed(b"\x02?q\r"))  # 0x71: net, motion, over
    assert obs.net and obs.flags == frozenset({ScaleFlag.MOTION, ScaleFlag.CENTER_OF_ZERO})


def test_8217_encoder_five_character_pounds():
    frame = mettler_8217.encode_weight(566_990, "lb5")
    assert frame == b"\x0201.25\r"


# -- through the real drivers and simulators ----------------------------------------------


async def test_magellan_upc_e_and_add_on_through_the_scanner_driver():
    sim = SimulatedScanner(make_endpoint("pty"), "magellan")
    await sim.start()
    readings = Readings()
    driver = ScannerDriver(
        "scanner-1",
        DeviceKindName.SCANNER,
        sim.url,
        readings,
        protocol="magellan",
        backoff=_backoff(),
    )
    task = await _run(driver)
    try:
        await assert_eventually(lambda: driver.health.state.value == "connected")
        await sim.scan("]E009988750")  # sent as S08E09988750
        await sim.scan("]E34006381333931" + "12")  # sent as S08F + 15 digits
        await assert_eventually(lambda: len(readings.of(BarcodeScanned)) == 2)
        upc_e, periodical = (r.barcode for r in readings.of(BarcodeScanned))
        assert upc_e.gtin == "00099887000050"
        assert (periodical.gtin, periodical.add_on) == ("04006381333931", "12")
    finally:
        await _stop(task)
        await sim.stop()


@pytest.mark.parametrize("status_prefix", [True, False])
async def test_nci_scale_without_s_prefix_and_lb_oz(status_prefix):
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "nci", unit="lb-oz")
    sim.nci_status_prefix = status_prefix
    await sim.start()
    readings = Readings()
    driver = _scale_driver("nci", sim.url, readings, role="produce")
    task = await _run(driver)
    try:
        sim.set_weight(581_165)  # 1 lb 4.5 oz
        await assert_eventually(
            lambda: any(
                r.status is ScaleStatus.STABLE and r.weight_mg == 581_165
                for r in readings.of(ScaleReported)
            )
        )
    finally:
        await _stop(task)
        await sim.stop()


# -- configuration: the market's rules and the NCI status form ---------------------------------


def _with_check_digits(item: str, value: str) -> str:
    """item + price/measure verifier + value + GTIN check digit (GS1 General Specifications)."""
    from biip.checksums import gs1_price_weight_check_digit
    from stdnum import ean

    body = item + str(gs1_price_weight_check_digit(value)) + value
    return body + ean.calc_check_digit(body)


def test_configured_variable_measure_rules_replace_the_markets():
    config = DeviceConfig(
        scanner_region="gb",
        variable_measure_rules=[
            {"prefix": "29", "measure": "weight", "pattern": "PPPPPPPCVVVV", "decimals": 3}
        ],
    )
    market = config.barcode_market()
    weighed = decode_barcode(_with_check_digits("2912345", "1250"), region=market)
    assert (weighed.label_weight_mg, weighed.variable_measure_item) == (1_250_000, "12345")
    # The built-in GS1 UK rules no longer apply: 28 is an ordinary GTIN here.
    plain = decode_barcode("2812345912348", region=market)
    assert (plain.gtin, plain.variable_measure, plain.label_price_minor) == (
        "02812345912348",
        False,
        None,
    )
    assert DeviceConfig(scanner_region="gb").barcode_market().rules is None


def test_bad_configuration_names_the_field():
    with pytest.raises(ValidationError, match=r"variable_measure_rules\.0"):
        DeviceConfig(
            variable_measure_rules=[
                {"prefix": "29", "measure": "weight", "pattern": "PPPP", "decimals": 3}
            ]
        )
    with pytest.raises(ValidationError, match="NCI scales only"):
        PeripheralConfig(
            id="s", kind="scale", role="bagging", protocol="8217", url="x", nci_status_prefix="S"
        )


async def test_nci_status_form_can_be_fixed_by_configuration():
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "nci", unit="lb")
    sim.nci_status_prefix = False
    await sim.start()
    readings = Readings()
    driver = _scale_driver("nci", sim.url, readings, nci_status_prefix="S")
    task = await _run(driver)
    try:
        sim.set_weight(113_398)
        # The scale answers without "S" while the config demands it: every reply is an error.
        await assert_eventually(lambda: len(readings.of(ProtocolErrorReported)) >= 2)
        assert not any(r.weight_mg == 113_398 for r in readings.of(ScaleReported))
    finally:
        await _stop(task)
        await sim.stop()
