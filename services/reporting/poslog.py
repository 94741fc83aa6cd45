"""ARTS POSLog XML to lane events, streamed through a parser safe against hostile XML.

Transactions are parsed one at a time as their closing tag arrives and then dropped, so
memory holds one transaction's elements plus the events derived so far. Entity
declarations (billion laughs, external entities) and external references are refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError
from lanesight.common.money import parse_minor
from lanesight.reporting.localtime import LocalTime, StoreZones
from lanesight.reporting.model import LaneEventRecord

_CHUNK_BYTES = 64 * 1024
# Milligrams per unit of the weight units POSLog quantities use.
_WEIGHT_MG = {
    "kg": Decimal(1_000_000),
    "kgm": Decimal(1_000_000),
    "lb": Decimal("453592.37"),
    "lbr": Decimal("453592.37"),
    "g": Decimal(1000),
    "grm": Decimal(1000),
    "oz": Decimal("28349.523125"),
    "onz": Decimal("28349.523125"),
}
_ENTRY_METHODS = {
    "scanned": "scanned",
    "selfscan": "scanned",
    "scan": "scanned",
    "keyed": "keyed",
    "lookup": "plu_lookup",
    "pricelookup": "plu_lookup",
    "priceembedded": "price_embedded",
}
_CANCELLED_STATUSES = {"canceled", "cancelled", "voided", "aborted"}
# Elements understood well enough to need nothing from them; anything else a transaction
# holds that is not handled below is skipped and counted by name.
_HEADER = {
    "RetailStoreID",
    "WorkstationID",
    "TillID",
    "SequenceNumber",
    "BusinessDayDate",
    "BeginDateTime",
    "EndDateTime",
    "OperatorID",
    "CurrencyCode",
}
_RETAIL_IGNORED = {"ReceiptDateTime", "TransactionCount", "ManagerApproval", "TransactionLink"}
_LINE_IGNORED = {"SequenceNumber", "BeginDateTime", "EndDateTime", "Tax", "LoyaltyReward"}


class PosLogError(ValueError):
    """The document cannot be imported; the message names the file, line and column."""

    def __init__(self, file_name: str, line: int, column: int, message: str) -> None:
        self.line = line
        self.column = column
        super().__init__(f"{file_name or '<poslog>'}: line {line}, column {column}: {message}")


@dataclass(slots=True)
class _Node:
    """A parsed element: local tag name, attributes by local name, children, text, position."""

    tag: str
    attrs: dict[str, str]
    line: int
    column: int
    children: list[_Node] = field(default_factory=list)
    text: str = ""

    def child(self, name: str) -> _Node | None:
        return next((c for c in self.children if c.tag == name), None)

    def text_of(self, name: str, default: str = "") -> str:
        node = self.child(name)
        return node.text.strip() if node is not None else default


# One transaction: ((store, lane, transaction id), its events).
PosLogTransaction = tuple[tuple[str, str, str], list[LaneEventRecord]]


@dataclass(slots=True)
class PosLogDocument:
    """What a POSLog file holds: its transactions and the unknown elements skipped."""

    transactions: list[PosLogTransaction] = field(default_factory=list)
    skipped_elements: Counter = field(default_factory=Counter)
    sink: Callable[[PosLogTransaction], None] | None = None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


class _Builder:
    """The parser target: holds one transaction's elements at a time, then hands it on."""

    def __init__(self, file_name: str, on_transaction, on_skip) -> None:
        self.file_name = file_name
        self.expat: Any = None  # the expat parser, set before the first feed
        self.root: _Node | None = None
        self.stack: list[_Node] = []
        self.on_transaction = on_transaction
        self.on_skip = on_skip

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        node = _Node(
            _local(tag),
            {_local(k): v for k, v in attrs.items()},
            self.expat.CurrentLineNumber,
            self.expat.CurrentColumnNumber + 1,
        )
        if self.root is None:
            self.root = node
            if node.tag not in ("POSLog", "Transaction"):
                raise PosLogError(
                    self.file_name,
                    node.line,
                    node.column,
                    f"not an ARTS POSLog document (the root element is {node.tag})",
                )
        if self.stack:
            self.stack[-1].children.append(node)
        self.stack.append(node)

    def end(self, tag: str) -> None:
        node = self.stack.pop()
        if self.stack and self.stack[-1] is self.root and self.root.tag == "POSLog":
            self.root.children.pop()  # done with it: keep memory flat
            (self.on_transaction if node.tag == "Transaction" else self.on_skip)(node)
        elif not self.stack and node.tag == "Transaction":
            self.on_transaction(node)

    def data(self, text: str) -> None:
        if self.stack and self.stack[-1] is not self.root and not self.stack[-1].children:
            self.stack[-1].text += text

    def close(self) -> None:
        return None


def parse_poslog(
    source: BinaryIO,
    *,
    file_name: str = "",
    default_store_id: str = "",
    local_time: LocalTime | StoreZones | None = None,
    weight_unit: str = "auto",
    on_transaction: Callable[[PosLogTransaction], None] | None = None,
) -> PosLogDocument:
    """Parse a POSLog document into transactions of lane events; PosLogError if unusable.

    With ``on_transaction`` each transaction is handed over as soon as it is parsed instead
    of being collected in the returned document, so memory stays flat for any file size.
    """
    document = PosLogDocument()
    document.sink = on_transaction
    mapper = _TransactionMapper(
        file_name, default_store_id, local_time or LocalTime(), weight_unit, document
    )
    builder = _Builder(file_name, mapper.add, mapper.skip)
    parser = DefusedXMLParser(target=builder, forbid_dtd=False)
    builder.expat = parser.parser

    def refused(message: str) -> PosLogError:
        expat = builder.expat
        return PosLogError(
            file_name, expat.CurrentLineNumber, expat.CurrentColumnNumber + 1, message
        )

    try:
        while chunk := source.read(_CHUNK_BYTES):
            parser.feed(chunk)
        parser.close()
    except ParseError as exc:
        line, column = exc.position
        reason = re.sub(r": line \d+, column \d+$", "", str(exc))
        raise PosLogError(file_name, line, column + 1, f"malformed XML: {reason}") from None
    except EntitiesForbidden as exc:
        raise refused(
            f"refused: the document declares the XML entity {exc.name!r}; entity declarations "
            "are not allowed (entity expansion and external entities are attack vectors)"
        ) from None
    except DTDForbidden as exc:
        raise refused(f"refused: {exc}") from None
    except DefusedXmlException as exc:
        raise refused(f"refused: the document references an external resource ({exc})") from None
    if builder.root is None:
        raise PosLogError(file_name, 1, 1, "empty document")
    return document


class _TransactionMapper:
    """Maps one POSLog Transaction element to lane events."""

    def __init__(self, file_name, default_store_id, local_time, weight_unit, document) -> None:
        self.file_name = file_name
        self.default_store_id = default_store_id
        self.local_time = local_time
        self.weight_unit = weight_unit
        self.document = document

    def fail(self, node: _Node, message: str) -> PosLogError:
        return PosLogError(self.file_name, node.line, node.column, message)

    def skip(self, node: _Node) -> None:
        self.document.skipped_elements[node.tag] += 1

    def add(self, node: _Node) -> None:
        store = node.text_of("RetailStoreID") or self.default_store_id
        lane = node.text_of("WorkstationID") or node.text_of("TillID")
        sequence = node.text_of("SequenceNumber")
        if not store:
            raise self.fail(node, "Transaction has no RetailStoreID and no default store was given")
        if not lane or not sequence:
            raise self.fail(node, "Transaction needs a WorkstationID and a SequenceNumber")
        when = node.text_of("EndDateTime") or node.text_of("BeginDateTime")
        if not when:
            raise self.fail(node, "Transaction has no EndDateTime or BeginDateTime")
        # A store's naive times are read in its own zone (StoreZones), else the one zone.
        zones = self.local_time
        local = zones.of(store) if isinstance(zones, StoreZones) else zones
        end_ms = self.time_ms(node, when, local)
        begin_ms = self.time_ms(node, node.text_of("BeginDateTime") or when, local)
        day = node.text_of("BusinessDayDate") or local.day(end_ms)
        key = (store, lane, f"{lane}:{day}:{sequence}")
        txn = _Transaction(
            self, key, begin_ms, end_ms, node.text_of("OperatorID"), node.text_of("CurrencyCode")
        )
        for child in node.children:
            if child.tag == "RetailTransaction":
                txn.retail(child)
            elif child.tag == "ControlTransaction":
                txn.control(child)
            elif child.tag not in _HEADER:
                self.skip(child)
        if self.document.sink is not None:
            self.document.sink((key, txn.events))
        else:
            self.document.transactions.append((key, txn.events))

    def time_ms(self, node: _Node, text: str, local: LocalTime) -> int:
        try:
            return local.naive_to_ms(datetime.fromisoformat(text))
        except ValueError:
            raise self.fail(node, f"not a date and time: {text!r}") from None


class _Transaction:
    """Builds the events of one transaction."""

    def __init__(self, mapper, key, begin_ms, end_ms, operator_id, currency) -> None:
        self.mapper = mapper
        self.store_id, self.lane_id, self.transaction_id = key
        self.begin_ms = begin_ms
        self.end_ms = end_ms
        self.operator_id = operator_id
        self.currency = currency or "XXX"
        self.events: list[LaneEventRecord] = []
        self.tendered = False
        self.items = 0

    def event(self, event_kind: str, time_ms: int, in_transaction: bool = True, **data) -> None:
        data.setdefault("operator_id", self.operator_id)
        self.events.append(
            LaneEventRecord(
                event_id=f"poslog:{self.store_id}:{self.transaction_id}:{len(self.events)}",
                store_id=self.store_id,
                lane_id=self.lane_id,
                sequence=0,
                time_ms=time_ms,
                transaction_id=self.transaction_id if in_transaction else "",
                kind=event_kind,
                data=data,
                source_device_id="poslog",
            )
        )

    def money(self, node: _Node, text: str) -> int:
        try:
            return parse_minor(text, self.currency)
        except ValueError:
            raise self.mapper.fail(node, f"not an amount: {text!r}") from None

    def decimal(self, node: _Node, text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.mapper.fail(node, f"not a number: {text!r}") from None
        if not value.is_finite():
            raise self.mapper.fail(node, f"not a number: {text!r}")
        return value

    # --- RetailTransaction ---------------------------------------------------------------

    def retail(self, node: _Node) -> None:
        status = node.attrs.get("TransactionStatus", "").lower()
        lines = [c for c in node.children if c.tag == "LineItem"]
        returns_only = any(li.child("Return") for li in lines) and not any(
            li.child("Sale") for li in lines
        )
        self.event("transaction_started", self.begin_ms, kind="return" if returns_only else "sale")
        total = None
        for child in node.children:
            if child.tag == "LineItem":
                self.line_item(child)
            elif child.tag == "Total":
                if child.attrs.get("TotalType") == "TransactionGrandAmount":
                    total = self.money(child, child.text.strip())
            elif child.tag not in _RETAIL_IGNORED:
                self.mapper.skip(child)
        outcome = "completed"
        if status in _CANCELLED_STATUSES or node.attrs.get("CancelFlag") == "true":
            outcome = "cancelled"
        elif status == "suspended" or node.attrs.get("SuspendFlag") == "true":
            outcome = "suspended"
        self.event(
            "transaction_ended",
            self.end_ms,
            total_minor=total,
            currency=self.currency,
            item_count=self.items,
            outcome=outcome,
        )

    def line_item(self, line: _Node) -> None:
        void = line.attrs.get("VoidFlag", "").lower() == "true"
        method = line.attrs.get("EntryMethod", "").rsplit(":", 1)[-1].lower()
        weighed = line.attrs.get("weightItem", "").lower() == "true"
        line_id = line.text_of("SequenceNumber")
        for child in line.children:
            if child.tag in ("Sale", "Return"):
                self.sale_or_return(child, line_id, void, method, weighed)
            elif child.tag == "Tender":
                self.tender(child)
            elif child.tag == "SupervisorOverride":
                self.event("attendant_override", self.end_ms, attendant_id=child.text.strip())
            elif child.tag == "Discount" and not void:
                amount = abs(self.money(child, child.text_of("Amount", "0")))
                self.event(
                    "discount_applied",
                    self.end_ms,
                    kind="manual",
                    amount_minor=amount,
                    currency=self.currency,
                    line_id=line_id,
                )
            elif child.tag == "RetailPriceModifier" and not void:
                self.price_modifier(child, line_id, None)
            elif child.tag not in _LINE_IGNORED:
                self.mapper.skip(child)

    def sale_or_return(self, node: _Node, line_id: str, void: bool, method: str, weighed: bool):
        amount = self.money(node, node.text_of("ExtendedAmount", "0"))
        code = node.text_of("ItemID") or _pos_item_id(node)
        if void:
            self.event(
                "item_voided",
                self.end_ms,
                line_id=line_id,
                amount_minor=abs(amount),
                currency=self.currency,
            )
            return
        if node.tag == "Return":
            link = node.child("TransactionLink")
            self.event(
                "refund_issued",
                self.end_ms,
                line_id=line_id,
                gtin=code,
                amount_minor=abs(amount),
                currency=self.currency,
                with_receipt=link is not None,
                original_transaction_id=link.text_of("SequenceNumber") if link else "",
            )
            return
        quantity_node = node.child("Quantity")
        quantity = self.decimal(node, quantity_node.text.strip() if quantity_node else "1")
        weight_mg = 0
        if weighed:
            unit = quantity_node.attrs.get("UnitOfMeasureCode", "") if quantity_node else ""
            weight_mg = int(quantity * _WEIGHT_MG[self.weight_unit_for(unit)])
            quantity = Decimal(1)
        self.items += 1
        self.event(
            "item_added",
            self.end_ms,
            line_id=line_id,
            gtin=code,
            description=node.text_of("Description"),
            quantity=int(quantity.to_integral_value()),
            weight_mg=weight_mg,
            entry_method=_ENTRY_METHODS.get(method, "unspecified"),
            unit_of_measure="kilogram" if weighed else "each",
            extended_minor=amount,
            currency=self.currency,
        )
        for modifier in (c for c in node.children if c.tag == "RetailPriceModifier"):
            self.price_modifier(modifier, line_id, node)

    def weight_unit_for(self, unit_code: str) -> str:
        code = unit_code.strip().lower()
        if code in _WEIGHT_MG:
            return code
        if self.mapper.weight_unit != "auto":
            return self.mapper.weight_unit
        return "lb" if self.currency == "USD" else "kg"

    def price_modifier(self, node: _Node, line_id: str, sale: _Node | None) -> None:
        if node.attrs.get("VoidFlag", "").lower() == "true" or node.child("PromotionID"):
            return  # promotions are computed by the POS, not given by the operator
        amount_node = node.child("Amount")
        action = amount_node.attrs.get("Action", "") if amount_node else ""
        previous, new = node.text_of("PreviousPrice"), node.text_of("NewPrice")
        hint = f"{node.attrs.get('MethodCode', '')} {node.text_of('ReasonCode')} {action}".lower()
        if previous and new:
            amount = self.money(node, previous) - self.money(node, new)
        else:
            amount = abs(self.money(node, amount_node.text.strip() if amount_node else "0"))
        if "override" in hint or action.lower() == "replace" or new:
            self.event(
                "price_override",
                self.end_ms,
                line_id=line_id,
                amount_minor=amount,
                currency=self.currency,
                reason_code=node.text_of("ReasonCode"),
            )
        else:
            self.event(
                "discount_applied",
                self.end_ms,
                line_id=line_id,
                kind="manual",
                amount_minor=amount,
                currency=self.currency,
            )

    def tender(self, node: _Node) -> None:
        if not self.tendered:
            self.tendered = True
            self.event("tender_started", self.end_ms)
        self.event(
            "tender_completed",
            self.end_ms,
            amount_minor=self.money(node, node.text_of("Amount", "0")),
            currency=self.currency,
            refund=node.attrs.get("TypeCode") == "Refund",
        )

    # --- ControlTransaction --------------------------------------------------------------

    def control(self, node: _Node) -> None:
        for child in node.children:
            if child.tag == "OperatorSignOn":
                self.event("operator_sign_on", self.end_ms, in_transaction=False)
            elif child.tag == "OperatorSignOff":
                self.event("operator_sign_off", self.end_ms, in_transaction=False)
            elif child.tag == "NoSale":
                self.event("no_sale_drawer_open", self.end_ms, in_transaction=False)
            elif child.tag in ("PostVoid", "Void", "SuspendDelete"):
                self.event("transaction_post_voided", self.end_ms, in_transaction=False)
            elif child.tag != "ReasonCode":
                self.mapper.skip(child)


def _pos_item_id(node: _Node) -> str:
    identity = node.child("POSIdentity")
    return identity.text_of("POSItemID") if identity is not None else ""
