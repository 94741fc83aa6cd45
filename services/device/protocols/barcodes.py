"""Barcode data -> GTIN, add-on, GS1 elements, PLU and variable-measure price/weight.

Structure is parsed with biip (GS1 element strings, UPC-E expansion, European RCN
rules); check digits are validated with python-stdnum (GTINs, GS1-128 element strings)
and biip's GS1 price check digit. Variable-measure rules biip lacks (US, GS1 UK 28)
are in variable_measure.py; docs/device.md lists every form and its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import biip
from biip.rcn import Rcn, RcnRegion
from biip.upc import Upc
from lanesight.device.protocols.scale_types import MG_PER_KG, MG_PER_LB, to_mg
from lanesight.device.protocols.variable_measure import (
    MARKET_RULES,
    VariableMeasureRule,
    match_rule,
    read_variable_measure,
)
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

# AIM identifier -> symbology name, for what matters at a checkout (ISO/IEC 15424; the
# E modifiers as biip.symbology lists them: E0 EAN-13/UPC-A/UPC-E, E1 and E2 the 2- and
# 5-digit add-on alone, E3 main code with add-on, E4 EAN-8).
_SYMBOLOGY_BY_AIM = {
    "]E0": "EAN-13",
    "]E1": "EAN/UPC 2-digit add-on",
    "]E2": "EAN/UPC 5-digit add-on",
    "]E3": "EAN/UPC with add-on",
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

#: Digits of each EAN/UPC main code as scanners send it (UPC-E: number system, 6, check).
MAIN_LENGTHS = {"EAN-13": 13, "UPC-A": 12, "UPC-E": 8, "EAN-8": 8}
# Datalogic: a Code 128 supplement after the main code starts with 8100, 8101 or 8102
# (the GS1 coupon extended codes) and has at least 2 data characters after them.
_SUPPLEMENT_AIS = ("8100", "8101", "8102")


@dataclass(frozen=True, slots=True)
class Market:
    """Where labels are read: the region (currency, biip's rules) and variable-measure rules.

    ``rules`` replaces the region's built-in variable-measure rules when given (a
    market whose GS1 member organisation defines other prefixes); None keeps them.
    """

    region: str = "us"
    rules: tuple[VariableMeasureRule, ...] | None = None


#: A region code ("us", "gb", ...) or a Market.
MarketLike = str | Market


def _region_code(region: MarketLike) -> str:
    return region.region if isinstance(region, Market) else region


def _rules_for(region: MarketLike) -> tuple[VariableMeasureRule, ...] | None:
    if isinstance(region, Market) and region.rules is not None:
        return region.rules
    return MARKET_RULES.get(_region_code(region))


@dataclass(frozen=True, slots=True)
class DecodedBarcode:
    """What a label carries; ``problem`` says why it failed validation (empty when valid).

    A label that fails validation carries nothing but what was read (raw data,
    identifier, symbology): no GTIN, price, weight or add-on.
    """

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
    #: The 2- or 5-digit add-on (supplement) read with or instead of the main code.
    add_on: str = ""
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


def _replace(base: DecodedBarcode, **changes) -> DecodedBarcode:
    values = {name: getattr(base, name) for name in DecodedBarcode.__slots__}
    values.update(changes)
    return DecodedBarcode(**values)


def _invalid(base: DecodedBarcode, problem: str) -> DecodedBarcode:
    """A rejected label: only what was read, nothing decoded."""
    return DecodedBarcode(
        base.raw_data,
        base.symbology_identifier,
        base.symbology,
        check_digit_valid=False,
        problem=problem,
    )


def _rejected(data: str, aim: str, symbology: str, problem: str) -> DecodedBarcode:
    return DecodedBarcode(data, aim, symbology, check_digit_valid=False, problem=problem)


def decode_us_price_embedded(upc12: str) -> DecodedBarcode | None:
    """Decode a US `2 IIIII V PPPP C` label; None when it is not number system 2."""
    if len(upc12) != 12 or not upc12.isdigit() or upc12[0] != "2":
        return None
    return _replace(_decode_gtin(upc12, "", "us"), symbology="UPC-A")


def _decode_gtin(digits: str, aim: str, region: MarketLike, symbology: str = "") -> DecodedBarcode:
    base = DecodedBarcode(
        raw_data=digits,
        symbology_identifier=aim,
        symbology=symbology or _symbology_name(aim, digits),
    )
    if not stdnum_ean.is_valid(digits):
        return _invalid(base, "invalid check digit")
    gtin = digits.zfill(14)
    base = _replace(base, gtin=gtin)
    if len(digits) not in (12, 13):
        return base  # GTIN-8 RCNs are company-internal; a GTIN-14 is never variable measure
    rules = _rules_for(region)
    if rules is not None:
        return _apply_market_rule(base, gtin, _region_code(region), rules)
    return _apply_biip_rcn(base, digits, _region_code(region))


def _apply_market_rule(base: DecodedBarcode, gtin: str, region: str, rules) -> DecodedBarcode:
    matched = match_rule(gtin, rules)
    if matched is None:
        return base
    rule, gtin13 = matched
    measure = read_variable_measure(rule, gtin13)
    base = _replace(base, variable_measure=True, variable_measure_item=measure.item_reference)
    if measure.problem:
        return _invalid(base, measure.problem)
    if measure.measure == "price":
        return _replace(
            base,
            label_price_minor=_to_minor(measure.value),
            currency_code=CURRENCY_BY_REGION.get(region, ""),
        )
    return _replace(base, label_weight_mg=to_mg(measure.value, MG_PER_KG))


def _apply_biip_rcn(base: DecodedBarcode, digits: str, region: str) -> DecodedBarcode:
    try:
        parsed = biip.parse(digits, config=biip.ParseConfig(rcn_region=region))
    except biip.ParseError as exc:
        return _invalid(base, str(exc))
    rcn = parsed.gtin
    if parsed.gtin_error:
        return _invalid(base, parsed.gtin_error)
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
    data: str,
    symbology_identifier: str = "",
    region: MarketLike = "us",
    currency_code: str = "",
    *,
    symbology: str = "",
) -> DecodedBarcode:
    """Decode one label's data (framing and AIM identifier already split off).

    ``symbology`` names the EAN/UPC main code when the framing says which it is
    (Magellan label ids: "UPC-A", "UPC-E", "EAN-13", "EAN-8"); whatever follows
    the main code is then its add-on. ``region`` is a region code or a Market.
    """
    aim = symbology_identifier
    currency = currency_code or CURRENCY_BY_REGION.get(_region_code(region), "")
    digits = data.isascii() and data.isdigit()
    if symbology in MAIN_LENGTHS:
        return _decode_framed_ean_upc(data, aim, symbology, region)
    if aim in _GS1_CARRIERS:
        return _decode_gs1(data, aim, currency)
    if aim in _EAN_UPC or aim == "]I1" or (not aim and digits and len(data) in (8, 12, 13, 14)):
        if not digits:
            return _rejected(
                data, aim, _SYMBOLOGY_BY_AIM.get(aim, ""), "EAN/UPC data must be digits"
            )
        if aim in _EAN_UPC:
            return _decode_aim_ean_upc(data, aim, region)
        if len(data) not in (8, 12, 13, 14):
            return _rejected(
                data,
                aim,
                _SYMBOLOGY_BY_AIM.get(aim, ""),
                "GTIN must have 8, 12, 13 or 14 digits",
            )
        decoded = _decode_gtin(data, aim, region)
        if aim == "]I1":
            decoded = _replace(decoded, symbology="ITF-14")
        return decoded
    if not aim and digits and len(data) in (4, 5):
        organic, problem = classify_plu(data)
        if problem:
            return _rejected(data, "", "PLU", problem)
        return DecodedBarcode(data, symbology="PLU", plu=data, plu_organic=organic)
    return DecodedBarcode(data, aim, _SYMBOLOGY_BY_AIM.get(aim, ""))


def _decode_aim_ean_upc(data: str, aim: str, region: MarketLike) -> DecodedBarcode:
    """]E0-]E4 per ISO/IEC 15424: lengths decide the main form, never guesses past them."""
    name = _SYMBOLOGY_BY_AIM[aim]
    size = len(data)
    if aim in ("]E1", "]E2"):
        want = 2 if aim == "]E1" else 5
        if size != want:
            return _rejected(
                data, aim, name, f"{aim} carries a {want}-digit add-on alone, not {size} digits"
            )
        return DecodedBarcode(data, aim, name, add_on=data)
    if aim == "]E4":
        if size != 8:
            return _rejected(data, aim, name, f"]E4 (EAN-8) carries 8 digits, not {size}")
        return _decode_main(data, "", "EAN-8", aim, region, data)
    if aim == "]E0":
        form = {13: "EAN-13", 12: "UPC-A", 8: "UPC-E"}.get(size)
        if form is None:
            return _rejected(
                data,
                aim,
                name,
                f"]E0 carries EAN-13/UPC-A (13 or 12 digits) or UPC-E (8), not {size}",
            )
        return _decode_main(data, "", form, aim, region, data)
    # ]E3: a 13-digit (EAN-13, UPC-A), 12-digit (UPC-A) or 8-digit (UPC-E) main code and
    # a 2- or 5-digit add-on; the lengths never overlap.
    for main_length, form in ((13, "EAN-13"), (12, "UPC-A"), (8, "UPC-E")):
        if size - main_length in (2, 5):
            return _decode_main(data[:main_length], data[main_length:], form, aim, region, data)
    return _rejected(
        data, aim, name, f"]E3 needs a main code plus a 2- or 5-digit add-on, not {size} digits"
    )


def _decode_framed_ean_upc(data: str, aim: str, form: str, region: MarketLike) -> DecodedBarcode:
    """A main code of a known form, then nothing, a 2/5-digit add-on or a Code 128 supplement."""
    main_length = MAIN_LENGTHS[form]
    if not data.isascii() or not data.isdigit():
        return _rejected(data, aim, form, "EAN/UPC data must be digits")
    main, rest = data[:main_length], data[main_length:]
    if len(main) < main_length:
        return _rejected(data, aim, form, f"{form} needs {main_length} digits, got {len(data)}")
    if rest and len(rest) not in (2, 5):
        ai = rest[:4]
        if ai not in _SUPPLEMENT_AIS or len(rest) < 6:
            return _rejected(
                data,
                aim,
                form,
                f"{len(rest)} digits after the {form}: not a 2/5-digit add-on"
                " or an 8100-8102 supplement",
            )
        decoded = _decode_main(main, "", form, aim, region, data)
        if decoded.problem:
            return decoded
        return _replace(
            decoded, gs1_elements=((ai, rest[4:]),), symbology=form + " + Code 128 supplement"
        )
    return _decode_main(main, rest, form, "]E3" if rest else aim, region, data)


def _decode_main(
    main: str, add_on: str, form: str, aim: str, region: MarketLike, raw: str
) -> DecodedBarcode:
    """Validate the main code (UPC-E expanded to UPC-A by biip) and attach the add-on."""
    name = form
    if form == "EAN-13" and main.startswith("0"):
        name = "UPC-A"  # UPC-A sent as 13 digits
    if add_on:
        name += f" + {len(add_on)}-digit add-on"
    digits = main
    if form == "UPC-E":
        try:
            digits = Upc.parse(main).as_upc_a()
        except biip.ParseError as exc:
            return _rejected(raw, aim, name, f"invalid UPC-E: {exc}")
    decoded = _decode_gtin(digits, aim, region, name)
    if raw == digits and not add_on:
        return decoded
    if decoded.problem:
        return _replace(decoded, raw_data=raw)
    return _replace(decoded, raw_data=raw, add_on=add_on)
