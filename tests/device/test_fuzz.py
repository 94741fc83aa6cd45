"""Property tests: parsers never raise, errors carry offsets, splitting never changes frames."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lanesight.device.protocols import escpos_status, magellan, mettler_8217, nci
from lanesight.device.protocols.barcodes import decode_barcode
from lanesight.device.protocols.framing import MAX_RAW_KEPT, ParseError
from lanesight.device.protocols.scanner import LineScannerParser

from tests.device.test_framing import PARSERS, VECTORS

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Bytes with the framing characters of every protocol over-represented.
_INTERESTING = st.sampled_from(
    [b"\x02", b"\r", b"\n", b"\x03", b"S", b"?", b"]", b"\x1d", b"08", b"14", b"0", b"\xff"]
)
_BYTES = st.lists(st.one_of(st.binary(max_size=8), _INTERESTING), max_size=40).map(b"".join)


def _check_items(items, fed: int) -> None:
    for item in items:
        offset = item.offset
        assert 0 <= offset < fed
        if isinstance(item, ParseError):
            assert len(item.raw) <= MAX_RAW_KEPT
            assert item.raw_length >= len(item.raw)
            assert item.reason


@FUZZ
@given(data=_BYTES, name=st.sampled_from(sorted(PARSERS)))
def test_random_bytes_never_raise_and_errors_have_offsets(data, name):
    parser = PARSERS[name]()
    items = parser.feed(data)
    _check_items(items, len(data))
    _check_items(parser.flush(), len(data) + 1)


@FUZZ
@given(
    name=st.sampled_from(sorted(VECTORS)),
    picks=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    junk=st.binary(max_size=12),
)
def test_any_split_of_valid_frames_and_junk_matches_the_whole(name, picks, cuts, junk):
    vectors = VECTORS[name]
    stream = junk + b"".join(vectors[pick % len(vectors)] for pick in picks)
    whole = PARSERS[name]().feed(stream)
    positions = sorted({cut % (len(stream) + 1) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *positions], [*positions, len(stream)], strict=True)]
    parser = PARSERS[name]()
    pieces = []
    for chunk in chunks:
        pieces.extend(parser.feed(chunk))
    frames = [item for item in whole if not isinstance(item, ParseError)]
    assert [item for item in pieces if not isinstance(item, ParseError)] == frames
    _check_items(pieces, len(stream))
    # Every valid frame after the junk comes out, whatever the junk was.
    assert len(frames) >= len(picks) - 1


@FUZZ
@given(
    data=st.one_of(st.text(max_size=40), st.text("0123456789", max_size=24)),
    aim=st.sampled_from(["", "]E0", "]E1", "]E2", "]E3", "]E4", "]C1", "]e0", "]Q1"]),
    form=st.sampled_from(["", "UPC-A", "UPC-E", "EAN-13", "EAN-8"]),
)
def test_barcode_decoding_never_raises(data, aim, form):
    for region in ("us", "gb", "de", "se"):
        decoded = decode_barcode(data, aim, region, symbology=form)
        if decoded.problem:
            assert not (decoded.gtin or decoded.add_on or decoded.label_weight_mg)
            assert decoded.label_price_minor is None
        if not decoded.problem:
            assert decoded.check_digit_valid
        if decoded.gtin:
            assert len(decoded.gtin) == 14 and decoded.gtin.isdigit()


@FUZZ
@given(replies=st.dictionaries(st.integers(1, 4), st.one_of(st.none(), st.integers(0, 255))))
def test_status_decoding_raises_only_its_own_error(replies):
    try:
        status = escpos_status.decode_status_replies(replies)
    except escpos_status.StatusReplyError:
        return
    if not status.reachable:
        assert status.paper is escpos_status.PaperState.UNKNOWN


@FUZZ
@given(data=_BYTES)
def test_8217_echo_mode_never_raises(data):
    parser = mettler_8217.Mettler8217Parser()
    items = parser.feed(b"\x02E\r" + data)
    parser.end_echo()
    items += parser.feed(data)
    _check_items(items, 2 * len(data) + 3)


def test_parsers_used_here_are_the_real_ones():
    assert PARSERS["scanner"] is LineScannerParser
    assert PARSERS["8217"] is mettler_8217.Mettler8217Parser
    assert PARSERS["nci"] is nci.NciParser
    assert PARSERS["magellan"] is magellan.MagellanParser
