"""Barcode strings as scanners send them, and what a lane agent decodes from them."""

from __future__ import annotations

from lanesight.fusion.events import BarcodeRead, Money
from stdnum import ean

# GS1 price check digit weights for a 4-digit price (GS1 General Specifications 7.9.3).
_W2MINUS = (0, 2, 4, 6, 8, 9, 1, 3, 5, 7)
_W3 = (0, 3, 6, 9, 2, 5, 8, 1, 4, 7)
_W5MINUS = (0, 5, 9, 4, 8, 3, 7, 2, 6, 1)


def price_check_digit(price4: str) -> str:
    """The GS1 check digit of a 4-digit price field."""
    d = [int(c) for c in price4]
    total = _W2MINUS[d[0]] + _W2MINUS[d[1]] + _W3[d[2]] + _W5MINUS[d[3]]
    return str(total * 3 % 10)


def ean13_scan(gtin: str) -> str:
    """The AIM-prefixed data an EAN-13/UPC-A scan sends: ']E0' + 13 digits."""
    digits = gtin[-13:] if len(gtin) == 14 else gtin.zfill(13)
    return "]E0" + digits


def us_price_embedded(item_ref: str, price_minor: int) -> str:
    """A US variable-measure UPC-A '2 IIIII V PPPP C' as a scanner sends it (']E0' + 13)."""
    price4 = f"{price_minor:04d}"
    if len(price4) != 4 or len(item_ref) != 5:
        raise ValueError("item_ref must be 5 digits and the price at most $99.99")
    body = "2" + item_ref + price_check_digit(price4) + price4
    return "]E00" + body + ean.calc_check_digit(body)


def decode_scan(data: str, scanner_id: str = "scanner-1") -> BarcodeRead:
    """Decode scanner data the way the lane agent does (GTIN, variable-measure price)."""
    aim = data[:3] if data.startswith("]") else ""
    raw = data[3:] if aim else data
    read = BarcodeRead(scanner_id=scanner_id, raw_data=raw, symbology_identifier=aim)
    if aim in ("]E0", "") and raw.isdigit() and len(raw) in (12, 13):
        digits = raw.zfill(13)
        read.symbology = "EAN-13"
        read.check_digit_valid = ean.is_valid(digits)
        if digits.startswith("02"):
            price4 = digits[8:12]
            read.variable_measure = True
            read.variable_measure_item = digits[2:7]
            read.check_digit_valid = read.check_digit_valid and (
                price_check_digit(price4) == digits[7]
            )
            read.label_price = Money(int(price4), "USD")
        else:
            read.gtin = digits.zfill(14)
    elif aim == "]E4" and raw.isdigit() and len(raw) == 8:
        read.symbology = "EAN-8"
        read.check_digit_valid = ean.is_valid(raw)
        read.gtin = raw.zfill(14)
    return read
