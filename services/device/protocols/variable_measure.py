"""Variable-measure (price- or weight-embedded) EAN/UPC rules per market, as GS1 member organisations define them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from biip.checksums import gs1_price_weight_check_digit


@dataclass(frozen=True, slots=True)
class VariableMeasureRule:
    """One variable-measure format, read off the GTIN-13 form of the label.

    ``pattern`` covers the 12 digits before the check digit, like biip's rule tables:
    ``P`` prefix and item reference, ``C`` the price/measure verifier, ``V`` the value.
    """

    prefix: str
    measure: Literal["price", "weight"]
    pattern: str
    decimals: int

    def __post_init__(self) -> None:
        if len(self.pattern) != 12 or set(self.pattern) - {"P", "C", "V"}:
            raise ValueError("pattern must be 12 characters of P, C and V")
        if not self.pattern.startswith("P" * max(len(self.prefix), 1)):
            raise ValueError("pattern must start with the prefix digits (P)")
        if not self.prefix.isdigit() or not 1 <= len(self.prefix) <= 3:
            raise ValueError("prefix must be 1 to 3 digits")
        if "V" not in self.pattern:
            raise ValueError("pattern needs value digits (V)")


@dataclass(frozen=True, slots=True)
class VariableMeasure:
    """What a variable-measure label carries; ``problem`` is set when its verifier fails."""

    item_reference: str
    measure: Literal["price", "weight"]
    value: Decimal
    problem: str = ""


def _span(pattern: str, char: str) -> slice | None:
    if char not in pattern:
        return None
    return slice(pattern.index(char), pattern.rindex(char) + 1)


# The price verifier is the GS1 4- or 5-digit price check digit (GS1 General
# Specifications 7.9.3/7.9.4); biip implements it.
_PRICE_VERIFIED = "PPPPPPPCVVVV"

#: Markets whose rules are defined here; the other biip regions use biip's tables.
MARKET_RULES: dict[str, tuple[VariableMeasureRule, ...]] = {
    # GS1 US: UPC-A number system 2 (GTIN-13 "02"), `2 IIIII V PPPP C`, price in cents.
    "us": (VariableMeasureRule("02", "price", _PRICE_VERIFIED, 2),),
    # GS1 UK "How to barcode variable measure items": branded variable measure prefixes
    # are 20XXX and 28XXX, `RR V PPPP C`, price in pence (biip lists 20 only).
    "gb": (
        VariableMeasureRule("20", "price", _PRICE_VERIFIED, 2),
        VariableMeasureRule("28", "price", _PRICE_VERIFIED, 2),
    ),
}


def match_rule(
    gtin14: str, rules: tuple[VariableMeasureRule, ...]
) -> tuple[VariableMeasureRule, str] | None:
    """The rule for a GTIN-12/13 (as 14 digits) and its GTIN-13 form; None when none applies."""
    if not gtin14.startswith("0"):
        return None  # a GTIN-14 is never a variable-measure retail label
    gtin13 = gtin14[1:]
    for rule in rules:
        if gtin13.startswith(rule.prefix):
            return rule, gtin13
    return None


def read_variable_measure(rule: VariableMeasureRule, gtin13: str) -> VariableMeasure:
    """Item reference and value of a label matched by ``rule``, with its verifier checked."""
    item_span = _span(rule.pattern, "P")
    value_span = _span(rule.pattern, "V")
    check_span = _span(rule.pattern, "C")
    assert item_span is not None and value_span is not None
    item = gtin13[item_span][len(rule.prefix) :]
    digits = gtin13[value_span]
    value = Decimal(digits) / Decimal(10) ** rule.decimals
    problem = ""
    if check_span is not None and len(digits) in (4, 5):
        if gs1_price_weight_check_digit(digits) != int(gtin13[check_span]):
            problem = f"invalid {rule.measure} check digit"
    return VariableMeasure(item, rule.measure, value, problem)
