"""What every scale protocol decodes to: a status, a weight in milligrams and raw flags."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

MG_PER_KG = Decimal(1_000_000)
MG_PER_LB = Decimal("453592.37")
MG_PER_OZ = MG_PER_LB / 16
MG_PER_G = Decimal(1000)


class ScaleStatus(enum.Enum):
    """The UnifiedPOS scale states (mirrors lanesight.v1.ScaleStatus)."""

    STABLE = "stable"
    IN_MOTION = "in_motion"
    ZERO = "zero"
    OVER_CAPACITY = "over_capacity"
    UNDER_ZERO = "under_zero"
    NOT_ZEROED = "not_zeroed"
    NOT_READY = "not_ready"


class ScaleFlag(enum.Enum):
    """One condition a scale's status bits report."""

    MOTION = "motion"
    OVER_CAPACITY = "over_capacity"
    UNDER_ZERO = "under_zero"
    OUTSIDE_ZERO_RANGE = "outside_zero_range"
    CENTER_OF_ZERO = "center_of_zero"
    AT_ZERO = "at_zero"
    CANNOT_FIND_ZERO = "cannot_find_zero"
    RAM_ERROR = "ram_error"
    EEPROM_ERROR = "eeprom_error"
    ROM_ERROR = "rom_error"
    CALIBRATION_ERROR = "calibration_error"


_ERRORS = {
    ScaleFlag.RAM_ERROR,
    ScaleFlag.EEPROM_ERROR,
    ScaleFlag.ROM_ERROR,
    ScaleFlag.CALIBRATION_ERROR,
}


def status_from_flags(flags: frozenset[ScaleFlag], weight_mg: int | None) -> ScaleStatus:
    """The one status that describes a set of flags, the most serious first."""
    if flags & _ERRORS:
        return ScaleStatus.NOT_READY
    if ScaleFlag.OVER_CAPACITY in flags:
        return ScaleStatus.OVER_CAPACITY
    if ScaleFlag.UNDER_ZERO in flags:
        return ScaleStatus.UNDER_ZERO
    if flags & {ScaleFlag.OUTSIDE_ZERO_RANGE, ScaleFlag.CANNOT_FIND_ZERO}:
        return ScaleStatus.NOT_ZEROED
    if ScaleFlag.MOTION in flags:
        return ScaleStatus.IN_MOTION
    if flags & {ScaleFlag.CENTER_OF_ZERO, ScaleFlag.AT_ZERO} or weight_mg == 0:
        return ScaleStatus.ZERO
    if weight_mg is None:
        return ScaleStatus.NOT_READY
    return ScaleStatus.STABLE


def contradiction(flags: frozenset[ScaleFlag]) -> str:
    """Why a set of flags cannot be true at once; empty when it can."""
    if {ScaleFlag.OVER_CAPACITY, ScaleFlag.UNDER_ZERO} <= flags:
        return "status says over capacity and under zero at once"
    if {ScaleFlag.CENTER_OF_ZERO, ScaleFlag.OUTSIDE_ZERO_RANGE} <= flags:
        return "status says center of zero and outside the zero range at once"
    return ""


@dataclass(frozen=True, slots=True)
class ScaleObservation:
    """One decoded scale reply."""

    offset: int
    status: ScaleStatus
    #: The weight in milligrams; None when the reply carried no weight.
    weight_mg: int | None = None
    net: bool = False
    flags: frozenset[ScaleFlag] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class EchoAck:
    """The 8217 answer to the echo probe command `E`."""

    offset: int


@dataclass(frozen=True, slots=True)
class EchoData:
    """Bytes a scale echoed back while in echo mode."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """The scale said it did not understand the last command."""

    offset: int


def to_mg(value: Decimal, mg_per_unit: Decimal) -> int:
    """Convert a weight to whole milligrams, rounding half up."""
    return int((value * mg_per_unit).quantize(Decimal(1), rounding=ROUND_HALF_UP))
