"""The one currency table (ISO 4217, from the maintained ``iso4217`` package) and exact money text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from iso4217 import Currency

# Codes a payment can be in: every ISO 4217 code with a minor unit. The package's data
# follows the ISO 4217 maintenance agency's list (withdrawn codes such as ANG or SLL leave
# it when ISO withdraws them); metals, SDR and test codes have no minor unit and are left out.
EXPONENTS: dict[str, int] = {c.code: c.exponent for c in Currency if c.exponent is not None}
ISO_4217_CODES = frozenset(EXPONENTS)


def is_known_currency(code: str) -> bool:
    """True when code is an ISO 4217 alphabetic code of a currency with a minor unit."""
    return code in EXPONENTS


def exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (2 for an unknown code)."""
    return EXPONENTS.get(currency.upper(), 2)


def format_minor(amount_minor: int, currency: str) -> str:
    """An integer amount of minor units as a decimal string, e.g. 1234 USD -> "12.34"."""
    digits = exponent(currency)
    if digits == 0:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}"


def parse_minor(text: str, currency: str) -> int:
    """A decimal amount ("1.26", "-2.79") as integer minor units, rounded half up."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    scaled = (value * (10 ** exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(scaled)
