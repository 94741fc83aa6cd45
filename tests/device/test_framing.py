"""Framing: every vector split at every position, and bad input that must not stop a parser."""

from __future__ import annotations

import pytest
from lanesight.device.protocols import magellan, mettler_8217, nci
from lanesight.device.protocols.framing import MAX_RAW_KEPT, DelimitedFrameReader, ParseError
from lanesight.device.protocols.scale_types import ScaleObservation
from lanesight.device.protocols.scanner import LineScannerParser, ScanFrame

PARSERS = {
    "8217": mettler_8217.Mettler8217Parser,
    "nci": nci.NciParser,
    "magellan": magellan.MagellanParser,
    "scanner": LineScannerParser,
}
VECTORS = {
    "8217": [
        b"\x0201.234\r",
        b"\x02001.25N\r",
        b"\x02?A\r",
        b"\x02?B\r",
        b"\x02?D\r",
        b"\x02?H\r",
        b"\x02?P\r",
        b"\x02?Q\r",
        b"\x0201.25\r",  # 5-character pounds (DIVA service manual)
        b"\x0201.25N\r",
        b"\x02?q\r",
    ],
    "nci": [
        b"\n00.250LB\r\nS00\r\x03",
        b"\nS10\r\x03",
        b"\nS20\r\x03",
        b"\nS02\r\x03",
        b"\n?\r\x03",
        b"\n0001.25LB\r\n00\r\x03",  # SCP-01 without "S"
        b"\n1LB 04.5OZ\r\nS00\r\x03",  # lb-oz
        b"\n01.250LB\r\nS0pt0\r\x03",  # four status bytes
        b"\nS0p8\r\x03",
    ],
    "magellan": [
        b"S08B39289510002308107\r",
        b"S110125\r",
        b"S1100260\r",
        b"S140\r",
        b"S141\r",
        b"S142\r",
        b"S143\r",
        b"S14400260\r",
        b"S145\r",
        b"S08E09988750\r",  # UPC-E
        b"S08F110123456789112345\r",  # EAN-13 + 5-digit add-on
        b"S08A0609920111878100000951\r",  # UPC-A + Code 128 supplement
    ],
    "scanner": [
        b"]E00123601057072\r",
        b"]E00012345678905\r\n",
        b"201404309526\r",
        b"]e00100012345678905310300125039220499\r",
        b"]C10100012345678905\x1d10ABC\r\n",
        b"4011\n",
        b"]E3400638133393112\r",
        b"]E112\r",
    ],
}
CASES = [(name, vector) for name, vectors in VECTORS.items() for vector in vectors]


def _feed_all(parser, chunks: list[bytes]) -> list:
    items = []
    for chunk in chunks:
        items.extend(parser.feed(chunk))
    return items


@pytest.mark.parametrize(("name", "vector"), CASES)
def test_every_split_of_a_vector_gives_the_same_result(name, vector):
    whole = PARSERS[name]().feed(vector)
    assert len(whole) == 1 and not isinstance(whole[0], ParseError), whole
    for cut in range(1, len(vector)):
        assert _feed_all(PARSERS[name](), [vector[:cut], vector[cut:]]) == whole, cut
    assert _feed_all(PARSERS[name](), [bytes([b]) for b in vector]) == whole


@pytest.mark.parametrize("name", list(VECTORS))
def test_back_to_back_frames_split_at_every_position(name):
    stream = b"".join(VECTORS[name])
    whole = PARSERS[name]().feed(stream)
    assert len(whole) == len(VECTORS[name])
    assert not any(isinstance(item, ParseError) for item in whole)
    for cut in range(1, len(stream)):
        assert _feed_all(PARSERS[name](), [stream[:cut], stream[cut:]]) == whole, cut
    offsets = [item.offset for item in whole]
    assert offsets == sorted(offsets) and offsets[0] == 0


@pytest.mark.parametrize(
    ("name", "good"),
    [
        ("8217", b"\x0201.234\r"),
        ("nci", b"\n00.250LB\r\nS00\r\x03"),
        ("magellan", b"S14400260\r"),
    ],
)
def test_garbage_then_a_good_frame(name, good):
    items = PARSERS[name]().feed(b"\x00\xffgarbage\x7f" + good)
    assert isinstance(items[0], ParseError)
    assert items[0].offset == 0
    assert items[0].raw_hex.startswith("00ff")
    assert isinstance(items[-1], ScaleObservation)


def test_scanner_garbage_line_is_an_error_and_the_next_line_parses():
    items = LineScannerParser().feed(b"\xff\xfe\x00\r]E00123601057072\r")
    assert isinstance(items[0], ParseError) and items[0].raw == b"\xff\xfe\x00"
    assert isinstance(items[1], ScanFrame)


@pytest.mark.parametrize(
    ("name", "truncated"),
    [
        ("8217", b"\x0201.2"),
        ("nci", b"\n00.250LB\r\nS0"),
        ("magellan", b"S1440"),
        ("scanner", b"]E0012360"),
    ],
)
def test_truncated_frame_is_reported_on_flush(name, truncated):
    parser = PARSERS[name]()
    assert parser.feed(truncated) == []
    (error,) = parser.flush()
    assert error.offset == 0 and error.raw == truncated
    assert "truncated" in error.reason


def test_8217_truncated_frame_followed_by_a_new_one():
    items = mettler_8217.Mettler8217Parser().feed(b"\x0201.2\x0201.234\r")
    assert isinstance(items[0], ParseError) and items[0].raw == b"\x0201.2"
    assert items[1].weight_mg == 1_234_000 and items[1].offset == 5


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("8217", b"\x02?\xff\r"),
        ("8217", b"\x02?\x7f\r"),
        ("nci", b"\nS\xff\xff\r\x03"),
        ("nci", b"\nS\x7f\x7f\x7f\r\x03"),
        ("magellan", b"S14\xff\r"),
    ],
)
def test_status_byte_with_every_bit_set_is_a_parse_error(name, frame):
    (error,) = PARSERS[name]().feed(frame)
    assert isinstance(error, ParseError)
    assert error.raw == frame and error.offset == 0


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("8217", b"\x02ab.cde\r"),
        ("8217", b"\x02?\r"),
        ("nci", b"\n12.5XY\r\nS00\r\x03"),
        ("nci", b"\nS0\r\x03"),
        ("magellan", b"S11123\r"),
        ("magellan", b"S99\r"),
        ("magellan", b"S08Z123\r"),
        ("scanner", b"]\x01bad\r"),
        ("scanner", b"]E0\r"),
    ],
)
def test_malformed_frames_are_parse_errors(name, frame):
    (error,) = PARSERS[name]().feed(frame)
    assert isinstance(error, ParseError), error


def test_ten_megabyte_line_without_terminator_is_one_error_and_bounded():
    parser = LineScannerParser()
    chunk = b"7" * (1 << 20)
    errors = []
    for _ in range(10):
        errors.extend(parser.feed(chunk))
    assert len(errors) == 1
    (error,) = errors
    assert error.offset == 0 and len(error.raw) == MAX_RAW_KEPT
    assert error.raw_length == 4097 and "longer than 4096" in error.reason
    # The rest of the line is skipped, then the scanner carries on.
    items = parser.feed(b"\r]E00123601057072\r")
    assert [type(item) for item in items] == [ScanFrame]
    assert items[0].offset == 10 * (1 << 20) + 1


def test_ten_megabytes_of_garbage_between_frames_is_one_error():
    parser = mettler_8217.Mettler8217Parser()
    errors = []
    for _ in range(10):
        errors.extend(parser.feed(b"g" * (1 << 20)))
    items = parser.feed(b"\x0201.234\r")
    assert len(errors) == 1 and errors[0].raw_length == 65
    assert isinstance(items[-1], ScaleObservation)


def test_reader_needs_a_terminator_and_one_start_byte():
    with pytest.raises(ValueError):
        DelimitedFrameReader(terminators=b"")
    with pytest.raises(ValueError):
        DelimitedFrameReader(terminators=b"\r", start=b"ab")


def test_parse_error_text_has_offset_hex_and_length():
    (error,) = mettler_8217.Mettler8217Parser().feed(b"\x02?\xff\r")
    text = str(error)
    assert "at byte 0" in text and "023fff0d" in text and "(4 bytes)" in text
