"""Barcode data -> GTIN, GS1 elements, PLU and variable-measure price/weight.

Structure is parsed with biip; check digits are validated with python-stdnum (GTINs,
GS1-128 element strings) and biip's GS1 price/weight check digit. US price-embedded
codes (`2 IIIII V PPPP C`), which biip lacks, are decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import biip
from biip.checksums import gs1_price_weight_check_digit
from biip.rcn import Rcn, RcnRegion
from lanesight.device.protocols.scale_types import MG_PER_KG, MG_PER_LB, to_mg
from stdnum import ean as stdnum_ean
from stdnum import gs1_128 as stdnum_gs1_128
from stdnum.exceptions import InvalidChecksum, ValidationError

#: Regions the agent can be configured for: "us" plus biip's European rule sets.
REGIONS = ("us", *(region.value for region in RcnRegion))
CURRENCY_BY_REGION = {
    "us": "USD",
    "gb": "GBP",
    "dk": "DKK",
    "no": "NOK",
    "se": "SEK",
    "de": "EUR",
    "fi": "EUR",
    "ee": "EUR",
    "lv": "EUR",
    "lt": "EUR",
}
# ISO 4217 numeric -> alphabetic, for AI 393n (amount with currency).
_NUMERIC_CURRENCY = {
    "840": "USD",
    "978": "EUR",
    "826": "GBP",
    "124": "CAD",
    "208": "DKK",
    "578": "NOK",
    "752": "SEK",
    "756": "CHF",
    "036": "AUD",
}
_MINOR_DIGITS = 2  # every currency above has two minor digits

# AIM identifier -> symbology name, for what matters at a checkout.
_SYMBOLOGY_BY_AIM = {
    "]E0": "EAN-13",
    "]E1": "EAN-13 + 2-digit add-on",
    "]E2": "EAN-13 + 5-digit add-on",
    "]E3": "EAN-13 with add-on",
    "]E4": "EAN-8",
    "]C0": "Code 128",
    "]C1": "GS1-128",
    "]I0": "ITF",
    "]I1": "ITF-14",
    "]e0": "GS1 DataBar",
    "]d1": "Data Matrix",
    "]d2": "GS1 DataMatrix",
    "]Q1": "QR Code",
    "]Q3": "GS1 QR Code",
    "]A0": "Code 39",
}
_GS1_CARRIERS = {"]C1", "]e0", "]d2", "]Q3", "]J1"}
_EAN_UPC = {"]E0", "]E1", "]E2", "]E3", "]E4"}


@dataclass(frozen=True, slots=True)
class DecodedBarcode:
    """What a label carries; ``problem`` says why it failed validation (empty when valid)."""

    raw_data: str
    symbology_identifier: str = ""
    symbology: str = ""
    gtin: str = ""
    plu: str = ""
    plu_organic: bool = False
    gs1_elements: tuple[tuple[str, str], ...] = ()
    label_weight_mg: int = 0
    label_price_minor: int | None = None
    currency_code: str = ""
    check_digit_valid: bool = True
    variable_measure: bool = False
    variable_measure_item: str = ""
    problem: str = ""


def classify_plu(code: str) -> tuple[bool, str]:
    """IFPS PLU rules: (is organic, problem); problem is empty for a valid PLU.

    4 digits 3000-4999 are conventional, 5 digits 93000-94999 organic; the 8 prefix
    is reserved and never used at retail.
    """
    if not code.isascii() or not code.isdigit():
        return False, "PLU must be digits"
    if len(code) == 4:
        return (False, "") if 3000 <= int(code) <= 4999 else (False, "PLU outside 3000-4999")
    if len(code) == 5:
        if code[0] == "9" and 3000 <= int(code[1:]) <= 4999:
            return True, ""
        if code[0] == "8":
            return False, "PLU prefix 8 is reserved"
        return False, "5-digit PLU must be 9 + 3000-4999 (organic)"
    return False, "PLU must have 4 or 5 digits"


def is_valid_gtin(digits: str) -> bool:
    """True for a GTIN-8/12/13/14 whose check digit validates (python-stdnum)."""
    return len(digits) in (8, 12, 13, 14) and digits.isdigit() and stdnum_ean.is_valid(digits)


def _to_minor(amount: Decimal) -> int:
    return int((amount * 10**_MINOR_DIGITS).to_integral_value())


def _symbology_name(aim: str, digits: str) -> str:
    if aim == "]E0" or (not aim and len(digits) in (12, 13)):
        if len(digits) == 12 or (len(digits) == 13 and digits.startswith("0")):
            return "UPC-A"
        return "EAN-13"
    if not aim and len(digits) == 8:
        return "EAN-8"
    return _SYMBOLOGY_BY_AIM.get(aim, "")


def decode_us_price_embedded(upc12: str) -> DecodedBarcode | None:
    """Decode a US `2 IIIII V PPPP C` label; None when it is not number system 2."""
    if len(upc12) != 12 or not upc12.isdigit() or upc12[0] != "2":
        return None
    item, verifier, price = upc12[1:6], upc12[6], upc12[7:11]
    base = DecodedBarcode(
        raw_data=upc12,
        symbology="UPC-A",
        gtin=upc12.zfill(14),
        variable_measure=True,
        variable_measure_item=item,
        currency_code="USD",
    )
    if not stdnum_ean.is_valid(upc12):
        return _invalid(base, "invalid check digit")
    if gs1_price_weight_check_digit(price) != int(verifier):
        return _invalid(base, "invalid price check digit")
    return _replace(base, label_price_minor=int(price))


def _replace(base: DecodedBarcode, **changes) -> DecodedBarcode:
    values = {name: getattr(base, name) for name in DecodedBarcode.__slots__}
    values.update(changes)
    return DecodedBarcode(**values)


def _invalid(base: DecodedBarcode, problem: str) -> DecodedBarcode:
    return _replace(base, check_digit_valid=False, problem=problem, gtin="", label_price_minor=None)


def _decode_gtin(digits: str, aim: str, region: str) -> DecodedBarcode:
    symbology = _symbology_name(aim, digits)
    base = DecodedBarcode(raw_data=digits, symbology_identifier=aim, symbology=symbology)
    if not stdnum_ean.is_valid(digits):
        return _invalid(base, "invalid check digit")
    gtin = digits.zfill(14)
    base = _replace(base, gtin=gtin)
    if region == "us":
        upc = gtin[2:]
        if gtin.startswith("00") and upc[0] == "2":
            decoded = decode_us_price_embedded(upc)
            assert decoded is not None
            return _replace(decoded, raw_data=digits, symbology_identifier=aim)
        return base
    try:
        parsed = biip.parse(digits, config=biip.ParseConfig(rcn_region=region))
    except biip.ParseError as exc:
        return _replace(base, problem=str(exc), check_digit_valid=False, gtin="")
    rcn = parsed.gtin
    if parsed.gtin_error:
        return _replace(base, problem=parsed.gtin_error, check_digit_valid=False, gtin="")
    if not isinstance(rcn, Rcn):
        return base
    weight_mg = to_mg(rcn.weight, MG_PER_KG) if rcn.weight is not None else 0
    price = _to_minor(rcn.price) if rcn.price is not None else None
    return _replace(
        base,
        variable_measure=rcn.weight is not None or rcn.price is not None,
        variable_measure_item=rcn.item_reference or "",
        label_weight_mg=weight_mg,
        label_price_minor=price,
        currency_code=CURRENCY_BY_REGION.get(region, "") if price is not None else "",
    )


def _element_fields(ai: str, value: str, decimal: Decimal | None) -> dict:
    """Weight and price carried by GS1 element strings (310n, 320n, 392n, 393n)."""
    if decimal is None:
        return {}
    if ai.startswith("310"):
        return {"label_weight_mg": to_mg(decimal, MG_PER_KG), "variable_measure": True}
    if ai.startswith("320"):
        return {"label_weight_mg": to_mg(decimal, MG_PER_LB), "variable_measure": True}
    if ai.startswith("392"):
        return {"label_price_minor": _to_minor(decimal), "variable_measure": True}
    if ai.startswith("393") and value[:3] in _NUMERIC_CURRENCY:
        return {
            "label_price_minor": _to_minor(decimal),
            "currency_code": _NUMERIC_CURRENCY[value[:3]],
            "variable_measure": True,
        }
    return {}


def _decode_gs1(data: str, aim: str, currency_code: str) -> DecodedBarcode:
    base = DecodedBarcode(
        raw_data=data, symbology_identifier=aim, symbology=_SYMBOLOGY_BY_AIM.get(aim, "")
    )
    try:
        parsed = biip.parse(aim + data)
    except biip.ParseError as exc:
        return _replace(base, problem=f"not a GS1 element string: {exc}")
    message = parsed.gs1_message
    if message is None:
        return _replace(base, problem=f"not a GS1 element string: {parsed.gs1_message_error}")
    fields: dict = {}
    elements = []
    gtin = ""
    for element in message.element_strings:
        elements.append((element.ai.ai, element.value))
        if element.ai.ai in ("01", "02") and not gtin:
            gtin = element.value
        fields.update(_element_fields(element.ai.ai, element.value, element.decimal))
    if "label_price_minor" in fields:
        fields.setdefault("currency_code", currency_code)
    base = _replace(base, gs1_elements=tuple(elements), **fields)
    try:
        stdnum_gs1_128.validate(message.as_hri())
    except InvalidChecksum:
        return _invalid(base, "invalid check digit in a GS1 element")
    except ValidationError:
        # stdnum does not know every AI biip knows; fall back to the GTINs alone.
        if gtin and not is_valid_gtin(gtin):
            return _invalid(base, "invalid GTIN check digit")
    return _replace(base, gtin=gtin)


def decode_barcode(
    data: str, symbology_identifier: str = "", region: str = "us", currency_code: str = ""
) -> DecodedBarcode:
    """Decode one label's data (framing and AIM identifier already split off)."""
    aim = symbology_identifier
    currency = currency_code or CURRENCY_BY_REGION.get(region, "")
    digits = data.isascii() and data.isdigit()
    if aim in _GS1_CARRIERS:
        return _decode_gs1(data, aim, currency)
    if aim in _EAN_UPC or aim == "]I1" or (not aim and digits and len(data) in (8, 12, 13, 14)):
        if not digits:
            return DecodedBarcode(
                raw_data=data,
                symbology_identifier=aim,
                symbology=_SYMBOLOGY_BY_AIM.get(aim, ""),
                check_digit_valid=False,
                problem="EAN/UPC data must be digits",
            )
        if aim in ("]E1", "]E2", "]E3"):
            return _decode_add_on(data, aim, region)
        if aim == "]E4" and len(data) != 8:
            return DecodedBarcode(
                data, aim, "EAN-8", check_digit_valid=False, problem="not 8 digits"
            )
        if len(data) not in (8, 12, 13, 14):
            return DecodedBarcode(
                data,
                aim,
                _SYMBOLOGY_BY_AIM.get(aim, ""),
                check_digit_valid=False,
                problem="GTIN must have 8, 12, 13 or 14 digits",
            )
        decoded = _decode_gtin(data, aim, region)
        if aim == "]I1":
            decoded = _replace(decoded, symbology="ITF-14")
        return decoded
    if not aim and digits and len(data) in (4, 5):
        organic, problem = classify_plu(data)
        if problem:
            return DecodedBarcode(data, symbology="PLU", check_digit_valid=False, problem=problem)
        return DecodedBarcode(data, symbology="PLU", plu=data, plu_organic=organic)
    return DecodedBarcode(data, aim, _SYMBOLOGY_BY_AIM.get(aim, ""))


def _decode_add_on(data: str, aim: str, region: str) -> DecodedBarcode:
    """EAN/UPC with a 2- or 5-digit add-on: the main code is the first 12/13 digits."""
    for main_length in (13, 12, 8):
        add_on = len(data) - main_length
        if add_on in (2, 5):
            decoded = _decode_gtin(data[:main_length], aim, region)
            return _replace(decoded, raw_data=data, symbology=_SYMBOLOGY_BY_AIM[aim])
    return DecodedBarcode(
        data, aim, _SYMBOLOGY_BY_AIM[aim], check_digit_valid=False, problem="bad add-on length"
    )
