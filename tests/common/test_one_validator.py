"""The same invalid POS events sent to the real device POS ingress and the real fusion ingest,
both over gRPC: device answers INVALID_ARGUMENT, fusion rejects, with the same field path."""

from __future__ import annotations

import time

import grpc
import pytest
from lanesight.common.config import load_config
from lanesight.common.server import start_server
from lanesight.fusion.app import create_app as create_fusion
from lanesight.v1 import (
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    events_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
)

from tests.device.conftest import agent_config, start_agent

E = events_pb2


def usd(minor: int, currency: str = "USD") -> common_pb2.Money:
    return common_pb2.Money(amount_minor=minor, currency_code=currency)


def item(transaction_id: str = "tx-1", event_id: str = "", **fields) -> E.LaneEvent:
    payload = E.ItemAdded(
        line_id="1",
        gtin="00012345678905",
        description="Soup",
        quantity=1,
        unit_price=usd(199),
        extended_price=usd(199),
        entry_method=E.ENTRY_METHOD_SCANNED,
        unit_of_measure=common_pb2.UNIT_OF_MEASURE_EACH,
    )
    for name, value in fields.items():
        if isinstance(value, common_pb2.Money):
            getattr(payload, name).CopyFrom(value)
        else:
            setattr(payload, name, value)
    return E.LaneEvent(event_id=event_id, transaction_id=transaction_id, item_added=payload)


def pos(transaction_id: str = "tx-1", **payload) -> E.LaneEvent:
    return E.LaneEvent(transaction_id=transaction_id, **payload)


# (case, event as the POS submits it, the field path both services must name)
CASES = [
    ("unknown currency", item(unit_price=usd(199, "XYZ")), "item_added.unit_price.currency_code"),
    ("negative unit price", item(unit_price=usd(-1)), "item_added.unit_price.amount_minor"),
    (
        "per-kg item weighing nothing",
        item(unit_of_measure=common_pb2.UNIT_OF_MEASURE_KILOGRAM, weight_mg=0),
        "item_added.weight_mg",
    ),
    ("GTIN check digit", item(gtin="00012345678906"), "item_added.gtin"),
    ("GTIN length", item(gtin="12345678901"), "item_added.gtin"),
    ("no GTIN and no PLU", item(gtin=""), "item_added.gtin"),
    ("reserved PLU", item(gtin="", plu="84011"), "item_added.plu"),
    ("unknown entry method", item(entry_method=42), "item_added.entry_method"),
    ("quantity 0", item(quantity=0), "item_added.quantity"),
    ("quantity out of bounds", item(quantity=1_000_000), "item_added.quantity"),
    ("description too long", item(description="d" * 600), "item_added.description"),
    ("no line id", item(line_id=""), "item_added.line_id"),
    (
        "currencies differ",
        item(extended_price=usd(199, "EUR")),
        "item_added.extended_price.currency_code",
    ),
    ("no transaction", item(transaction_id=""), "transaction_id"),
    ("transaction id too long", item(transaction_id="t" * 200), "transaction_id"),
    ("event id too long", item(event_id="e" * 200), "event_id"),
    (
        "tender without type",
        pos(tender_completed=E.TenderCompleted(amount=usd(500))),
        "tender_completed.tender_type",
    ),
    (
        "tender without amount",
        pos(tender_completed=E.TenderCompleted(tender_type=E.TENDER_TYPE_CARD)),
        "tender_completed.amount",
    ),
    (
        "negative discount",
        pos(discount_applied=E.DiscountApplied(amount=usd(-5))),
        "discount_applied.amount.amount_minor",
    ),
    (
        "refund of a bad GTIN",
        pos(refund_issued=E.RefundIssued(gtin="123", amount=usd(5))),
        "refund_issued.gtin",
    ),
    ("void without amount", pos(item_voided=E.ItemVoided(line_id="1")), "item_voided.amount"),
    (
        "skip bagging outside a transaction",
        pos("", bagging_skipped=E.BaggingSkipped(line_id="1")),
        "transaction_id",
    ),
    (
        "negative own bag",
        pos("", own_bag_declared=E.OwnBagDeclared(bag_weight_mg=-5)),
        "own_bag_declared.bag_weight_mg",
    ),
]
VALID = [
    ("EAN-13 GTIN", item(gtin="4006381333931")),
    ("UPC-A GTIN", item(gtin="036000291452")),
    ("per-kg item", item(unit_of_measure=common_pb2.UNIT_OF_MEASURE_KILOGRAM, weight_mg=412_000)),
    ("skip bagging", pos(bagging_skipped=E.BaggingSkipped(line_id="1"))),
    ("own bag before the transaction", pos("", own_bag_declared=E.OwnBagDeclared())),
]


@pytest.fixture
async def services(tmp_path):
    """A lane agent (DeviceService) and a fusion server, both real, on port 0."""
    agent = await start_agent(agent_config(tmp_path))
    fusion_config = load_config(
        None,
        environ={
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "fusion.sqlite"),
            "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
        },
    )
    fusion = await start_server(create_fusion(fusion_config), fusion_config, 0)
    device_channel = grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}")
    fusion_channel = grpc.aio.insecure_channel(f"127.0.0.1:{fusion.port}")
    try:
        yield (
            device_pb2_grpc.DeviceServiceStub(device_channel),
            fusion_pb2_grpc.FusionServiceStub(fusion_channel),
        )
    finally:
        await device_channel.close()
        await fusion_channel.close()
        await fusion.stop()
        await agent.stop()


async def device_fields(stub, event: E.LaneEvent) -> list[str]:
    """The field paths of the device's INVALID_ARGUMENT, or [] when it accepted the event."""
    try:
        await stub.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=[event]), timeout=5)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc
        return [part.split(": ", 1)[0] for part in exc.details().split("; ")]
    return []


async def fusion_fields(stub, events: list[E.LaneEvent]) -> list[str]:
    """Fusion's rejection field of each event (stamped as an agent would), "" if accepted."""
    call = stub.Ingest()
    fields = []
    now = time.time_ns()
    for sequence, event in enumerate(events, start=1):
        stamped = E.LaneEvent()
        stamped.CopyFrom(event)
        stamped.store_id, stamped.lane_id, stamped.sequence = "store-7", "lane-3", sequence
        stamped.event_id = stamped.event_id or f"ev-{sequence}"
        stamped.lane_time.FromNanoseconds(now + sequence)
        await call.write(fusion_pb2.IngestRequest(events=[stamped]))
        response = await call.read()
        assert response.acked_sequence == sequence  # rejected events are still acked
        fields.append(response.rejections[0].field if response.rejections else "")
    await call.done_writing()
    return fields


async def test_device_and_fusion_reject_the_same_events_naming_the_same_field(services):
    device, fusion = services
    from_fusion = await fusion_fields(fusion, [event for _, event, _ in CASES])
    for (case, event, field), fusion_field in zip(CASES, from_fusion, strict=True):
        from_device = await device_fields(device, event)
        assert from_device and from_device[0] == f"events[0].{field}", (case, from_device)
        assert fusion_field == field, (case, fusion_field)


async def test_what_one_accepts_the_other_accepts(services):
    device, fusion = services
    assert await fusion_fields(fusion, [event for _, event in VALID]) == [""] * len(VALID)
    for case, event in VALID:
        assert await device_fields(device, event) == [], case
