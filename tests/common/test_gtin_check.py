"""The validator's own GTIN check digit test gives exactly what python-stdnum's does."""

from __future__ import annotations

import random

from lanesight.common.validation import _is_gtin
from stdnum import ean


def _stdnum(code: str) -> bool:
    """What the validator accepted before: stdnum's check, on ASCII digits only."""
    return len(code) in (8, 12, 13, 14) and code.isascii() and code.isdigit() and ean.is_valid(code)


def test_gtin_check_agrees_with_stdnum_on_many_codes():
    rng = random.Random(15)
    codes = [
        "",
        "0",
        "00000000",
        "00000000000000",
        "٠١٢٣٤٥٦٧",
        "1234567 ",
        " 12345670",
        "1234-5670",
    ]
    for _ in range(60_000):
        length = rng.choice((7, 8, 9, 11, 12, 13, 14, 15))
        body = "".join(rng.choice("0123456789") for _ in range(length - 1))
        codes.append(body + ean.calc_check_digit(body))  # valid when the length is
        codes.append(body + rng.choice("0123456789"))  # a random check digit: mostly invalid
    valid = 0
    for code in codes:
        expected = _stdnum(code)
        _is_gtin.cache_clear()
        assert _is_gtin(code) == expected, code
        valid += expected
    assert 20_000 < valid < len(codes) - 20_000  # both outcomes well covered


def test_a_changed_digit_is_refused():
    code = "4006381333931"  # a valid EAN-13
    assert _is_gtin(code)
    for i in range(len(code)):
        for digit in "0123456789":
            changed = code[:i] + digit + code[i + 1 :]
            assert _is_gtin(changed) == (changed == code)
