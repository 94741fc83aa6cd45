"""The one validator of a LaneEvent: every problem, named by field path, for device, fusion and reporting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from lanesight.common import schema
from lanesight.common.money import EXPONENTS
from lanesight.v1 import common_pb2, events_pb2
from stdnum import ean

MAX_SEQUENCE = 2**63 - 1  # SQLite and most stores keep a signed 64-bit integer
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an event: the field path inside the LaneEvent and what is wrong."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Bounds:
    """The limits every lane event must keep; the defaults are documented in contributing.md."""

    max_future_ms: int = _DAY_MS  # lane clocks run a little ahead; a day ahead is a bad clock
    max_past_ms: int = 3653 * _DAY_MS  # ten years: older than any retention or replay
    max_id_length: int = 128  # ids and codes (UUIDs are 36)
    max_text_length: int = 512  # descriptions, details, raw barcode data
    max_count: int = 10_000  # quantities and item counts
    max_weight_mg: int = 1_000_000_000  # one tonne, far over any lane scale's capacity
    max_amount_minor: int = 10**12  # ten billion in a 2-digit currency
    max_repeated: int = 64  # labels, GS1 elements


_Check = Callable[[Message, str, list[Problem]], None]
_GTIN_PROBLEM = "must be a GTIN of 8, 12, 13 or 14 digits with a valid check digit"


@functools.lru_cache(
    maxsize=32768
)  # a store's lanes scan the same few thousand GTINs over and over
def _is_gtin(code: str) -> bool:
    # Length and digits checked here, so stdnum's check digit alone is left (what
    # ean.is_valid does after cleaning separators out, at a third of its cost).
    return (
        len(code) in (8, 12, 13, 14)
        and code.isascii()
        and code.isdigit()
        and ean.calc_check_digit(code[:-1]) == code[-1]
    )


def _plu_problem(plu: str, price_embedded: bool) -> str:
    """Why a PLU is not acceptable, or "" (IFPS ranges, loosely: stores keep own 4-digit PLUs)."""
    if not (plu.isascii() and plu.isdigit()):
        return "must be digits"
    if price_embedded:
        # A variable-measure label carries the store's item reference, not an IFPS PLU.
        return "" if 4 <= len(plu) <= 6 else "a price-embedded item reference is 4-6 digits"
    if len(plu) == 4:
        return ""
    if len(plu) == 5 and plu[0] == "9" and 3000 <= int(plu[1:]) <= 4999:
        return ""
    return "must be 4 digits, or 5 digits 93000-94999 (organic)"


class LaneEventValidator:
    """Checks compiled once per payload kind from the schema, applied per event."""

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        self._checks: dict[str, tuple[_Check, ...]] = {
            kind.name: self._compile(kind, None) for kind in schema.PAYLOADS.values()
        }
        # The same checks over plain objects named like the messages (fusion's dataclasses),
        # compiled per class on first use.
        self._plain_checks: dict[tuple[str, type], tuple[_Check, ...]] = {}

    # ---- per event ------------------------------------------------------------------

    def validate(
        self, event: events_pb2.LaneEvent, now_ms: int | None = None, stamped: bool = True
    ) -> list[Problem]:
        """Every problem of ``event``, envelope first.

        ``stamped`` is False at POS ingress, where the agent has yet to set store, lane,
        sequence and lane time; ``now_ms`` (wall clock) enables the lane-time window.
        """
        problems: list[Problem] = []
        ts = event.lane_time
        self._envelope(event, ts.seconds, ts.nanos, now_ms, stamped, problems)
        kind = event.WhichOneof("payload")
        if kind is None:
            problems.append(Problem("payload", "exactly one payload must be set"))
            return problems
        if kind in schema.TRANSACTION_PAYLOADS and not event.transaction_id:
            problems.append(Problem("transaction_id", f"is required for {kind}"))
        payload = getattr(event, kind)
        for check in self._checks[kind]:
            check(payload, kind, problems)
        return problems

    def validate_plain(
        self, event: Any, kind: str | None, now_ms: int | None = None
    ) -> list[Problem]:
        """The same checks over a plain object: the LaneEvent fields by name, ``lane_time_ms``
        for lane_time, and ``payload`` (fields named as in the message, None for unset Money)
        of the payload field ``kind``. For events built in process, with no protobuf."""
        problems: list[Problem] = []
        seconds, rest_ms = divmod(event.lane_time_ms, 1000)
        self._envelope(event, seconds, rest_ms * 1_000_000, now_ms, True, problems)
        payload = event.payload
        if kind is None or payload is None:
            problems.append(Problem("payload", "exactly one payload must be set"))
            return problems
        if kind in schema.TRANSACTION_PAYLOADS and not event.transaction_id:
            problems.append(Problem("transaction_id", f"is required for {kind}"))
        checks = self._plain_checks.get((kind, type(payload)))
        if checks is None:
            checks = self._compile(schema.PAYLOADS[kind], type(payload))
            self._plain_checks[(kind, type(payload))] = checks
        for check in checks:
            check(payload, kind, problems)
        return problems

    def _envelope(
        self,
        event: Any,
        seconds: int,
        nanos: int,
        now_ms: int | None,
        stamped: bool,
        out: list[Problem],
    ) -> None:
        # Written out field by field: this runs for every event fusion receives.
        b = self.bounds
        id_max = b.max_id_length
        event_id = event.event_id
        if not event_id:
            if stamped:
                out.append(Problem("event_id", "is required"))
        elif len(event_id) > id_max or not event_id.isprintable():
            out.append(Problem("event_id", f"must be printable, at most {id_max} characters"))
        if len(event.transaction_id) > id_max:
            out.append(Problem("transaction_id", f"must be at most {id_max} characters"))
        if len(event.source_device_id) > id_max:
            out.append(Problem("source_device_id", f"must be at most {id_max} characters"))
        if not stamped:
            return
        if len(event.store_id) > id_max:
            out.append(Problem("store_id", f"must be at most {id_max} characters"))
        if len(event.lane_id) > id_max:
            out.append(Problem("lane_id", f"must be at most {id_max} characters"))
        if event.sequence > MAX_SEQUENCE:
            out.append(Problem("sequence", "must be below 2^63"))
        if seconds <= 0 and nanos <= 0:
            out.append(Problem("lane_time", "is required"))
        elif not 0 <= nanos < 1_000_000_000:
            out.append(Problem("lane_time.nanos", "must be in 0..999999999"))
        elif now_ms is not None:
            at_ms = seconds * 1000 + nanos // 1_000_000
            if at_ms > now_ms + b.max_future_ms:
                out.append(
                    Problem("lane_time", f"is more than {b.max_future_ms // 1000} s in the future")
                )
            elif at_ms < now_ms - b.max_past_ms:
                out.append(
                    Problem(
                        "lane_time", f"is more than {b.max_past_ms // _DAY_MS} days in the past"
                    )
                )

    # ---- compiled per payload kind ----------------------------------------------------

    def _compile(self, kind: schema.PayloadKind, plain: type | None) -> tuple[_Check, ...]:
        """The checks of one payload kind, fields of a kind batched into one loop (one call
        per kind of field, not per field): texts, enums, integers, money, repeated, then
        the rules across fields. ``plain`` is the class of plain payloads, else None; a
        field that class lacks (newer than it) is not checked."""
        b = self.bounds
        has = _proto_has if plain is None else _plain_has
        texts: list[tuple[str, int, bool, bool]] = []
        enums: list[tuple[str, frozenset[int], bool, str]] = []
        ranges: list[tuple[str, int, int]] = []
        checks: list[_Check] = []
        for field in kind.message.fields:
            name = field.name
            key = (kind.name, name)
            if plain is not None and not hasattr(plain, name):
                continue
            if field.is_repeated:
                checks.append(self._repeated_check(field, plain is None))
            elif field.message_type is schema.MONEY:
                required = name in schema.REQUIRED_MONEY.get(kind.name, ())
                non_negative = key in schema.NON_NEGATIVE_MONEY
                checks.append(_money_check(name, non_negative, required, b.max_amount_minor, has))
            elif field.enum_type is not None:
                required = key in schema.REQUIRED_ENUMS
                enums.append((name, kind.enum_fields[name], required, field.enum_type.name))
            elif field.type == field.TYPE_STRING:
                limit = b.max_id_length if name.endswith("_id") else b.max_text_length
                texts.append((name, limit, key in schema.REQUIRED_TEXT, key in schema.GTIN_FIELDS))
            elif name in kind.weight_fields:
                signed = kind.name == "scale_reading"  # UNDER_ZERO readings: checked below
                ranges.append((name, -b.max_weight_mg if signed else 0, b.max_weight_mg))
            elif key in schema.COUNTS:
                ranges.append((name, schema.COUNTS[key], b.max_count))
            elif field.type == field.TYPE_UINT64:
                ranges.append((name, 0, MAX_SEQUENCE))
            elif field.type == field.TYPE_INT64:
                ranges.append((name, -MAX_SEQUENCE, MAX_SEQUENCE))
            elif field.type == field.TYPE_INT32:
                ranges.append((name, 0, b.max_count))
        out: list[_Check] = []
        if texts:
            out.append(_text_check(tuple(texts)))
        if enums:
            out.append(_enum_check(tuple(enums)))
        if ranges:
            out.append(_range_check(tuple(ranges)))
        special = _SPECIAL.get(kind.name)
        if special is not None:
            checks.append(special(has))
        return tuple(out + checks)

    def _repeated_check(self, field: FieldDescriptor, proto: bool) -> _Check:
        b = self.bounds
        name = field.name
        inner = field.message_type.fields
        texts = tuple(f.name for f in inner if f.type == f.TYPE_STRING)
        scores = tuple(f.name for f in inner if f.type == f.TYPE_FLOAT)
        order = tuple(f.name for f in inner)
        most, text_max = b.max_repeated, b.max_text_length

        def repeated_check(p: Message, k: str, out: list[Problem]) -> None:
            values = getattr(p, name)
            if not values:
                return
            if len(values) > most:
                out.append(Problem(f"{k}.{name}", f"must have at most {most} entries"))
                return
            # A message no longer than the limit holds no text longer than it (one C call).
            long_texts = texts if not proto or p.ByteSize() > text_max else ()
            for i, entry in enumerate(values):
                # A plain pair such as fusion's (ai, value) holds the fields in field order.
                value = dict(zip(order, entry, strict=False)) if type(entry) is tuple else None
                for sub in long_texts:
                    text = value[sub] if value is not None else getattr(entry, sub)
                    if len(text) > text_max:
                        out.append(
                            Problem(
                                f"{k}.{name}[{i}].{sub}", f"must be at most {text_max} characters"
                            )
                        )
                for sub in scores:
                    v = value[sub] if value is not None else getattr(entry, sub)
                    if not (0.0 <= v <= 1.0):  # also false for NaN
                        out.append(Problem(f"{k}.{name}[{i}].{sub}", "must be in 0..1"))

        return repeated_check


def _proto_has(p: Any, name: str) -> bool:
    return p.HasField(name)


def _plain_has(p: Any, name: str) -> bool:
    return getattr(p, name) is not None


def _money_check(
    name: str, non_negative: bool, required: bool, limit: int, has: Callable[[Any, str], bool]
) -> _Check:
    known = EXPONENTS  # ISO 4217 codes with a minor unit (money.is_known_currency)

    def money_check(p: Message, k: str, out: list[Problem]) -> None:
        money = getattr(p, name)
        # An unset Money reads as None (plain) or as an empty default (protobuf): its
        # currency is empty, so presence is asked only then (one call fewer per amount).
        if money is None or (not money.currency_code and not has(p, name)):
            if required:
                out.append(Problem(f"{k}.{name}", "is required"))
            return
        code = money.currency_code
        if code not in known:
            out.append(
                Problem(
                    f"{k}.{name}.currency_code",
                    f"{code[:8]!r} is not an ISO 4217 currency code",
                )
            )
        amount = money.amount_minor
        if non_negative and amount < 0:
            out.append(Problem(f"{k}.{name}.amount_minor", "must not be negative"))
        elif abs(amount) > limit:
            out.append(Problem(f"{k}.{name}.amount_minor", f"must be within ±{limit}"))

    return money_check


def _text_check(fields: tuple[tuple[str, int, bool, bool], ...]) -> _Check:
    def text_check(p: Any, k: str, out: list[Problem]) -> None:
        for name, limit, required, gtin in fields:
            value = getattr(p, name)
            if not value:
                if required:
                    out.append(Problem(f"{k}.{name}", "is required"))
            elif len(value) > limit:
                out.append(Problem(f"{k}.{name}", f"must be at most {limit} characters"))
            elif gtin and not _is_gtin(value):
                out.append(Problem(f"{k}.{name}", _GTIN_PROBLEM))

    return text_check


def _enum_check(fields: tuple[tuple[str, frozenset[int], bool, str], ...]) -> _Check:
    def enum_check(p: Any, k: str, out: list[Problem]) -> None:
        for name, known, required, enum_name in fields:
            value = getattr(p, name)
            if value not in known:
                out.append(Problem(f"{k}.{name}", f"{int(value)} is not a known {enum_name} value"))
            elif required and value == 0:
                out.append(Problem(f"{k}.{name}", "must be set"))

    return enum_check


def _range_check(fields: tuple[tuple[str, int, int], ...]) -> _Check:
    def range_check(p: Any, k: str, out: list[Problem]) -> None:
        for name, low, high in fields:
            value = getattr(p, name)
            if value < low:
                message = "must not be negative" if low == 0 else f"must be at least {low}"
                out.append(Problem(f"{k}.{name}", message))
            elif value > high:
                out.append(Problem(f"{k}.{name}", f"must be at most {high}"))

    return range_check


# ---- rules across fields of one payload ---------------------------------------------


def _item_added(has: Callable[[Any, str], bool]) -> _Check:
    def item_check(p: events_pb2.ItemAdded, k: str, out: list[Problem]) -> None:
        plu = p.plu
        if not plu and not p.gtin:
            out.append(Problem(f"{k}.gtin", "an item needs a gtin or a plu"))
        if plu:
            price_embedded = p.entry_method == events_pb2.ENTRY_METHOD_PRICE_EMBEDDED
            problem = _plu_problem(plu, price_embedded)
            if problem:
                out.append(Problem(f"{k}.plu", problem))
        if p.unit_of_measure == common_pb2.UNIT_OF_MEASURE_KILOGRAM and p.weight_mg <= 0:
            out.append(Problem(f"{k}.weight_mg", "must be more than 0 for an item sold by weight"))
        unit, extended = p.unit_price, p.extended_price
        # Presence asked only when the codes differ (an unset protobuf Money reads "").
        if (
            unit is not None
            and extended is not None
            and unit.currency_code != extended.currency_code
            and has(p, "unit_price")
            and has(p, "extended_price")
        ):
            out.append(
                Problem(f"{k}.extended_price.currency_code", "must match unit_price.currency_code")
            )

    return item_check


def _scale_reading(has: Callable[[Any, str], bool]) -> _Check:
    def scale_check(p: events_pb2.ScaleReading, k: str, out: list[Problem]) -> None:
        if p.weight_mg < 0 and p.status != events_pb2.SCALE_STATUS_UNDER_ZERO:
            out.append(
                Problem(f"{k}.weight_mg", "must not be negative unless status is UNDER_ZERO")
            )

    return scale_check


# Rules across fields of one payload, made for protobuf or plain objects.
_SPECIAL: dict[str, Callable[[Callable[[Any, str], bool]], _Check]] = {
    "item_added": _item_added,
    "scale_reading": _scale_reading,
}

DEFAULT = LaneEventValidator()


def validate_lane_event(
    event: events_pb2.LaneEvent, now_ms: int | None = None, stamped: bool = True
) -> list[Problem]:
    """Every problem of a LaneEvent under the default bounds (see LaneEventValidator.validate)."""
    return DEFAULT.validate(event, now_ms, stamped)
