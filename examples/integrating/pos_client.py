"""A POS integration in Python: a sale with a voided line, a refund and a no-sale at one
lane, then the alert lanesight raised, acknowledged and resolved as an attendant would.

Needs only the API: `pip install lanesight-api` (grpcio and protobuf), not the services.

    python examples/integrating/pos_client.py --lane 127.0.0.1:50061 --fusion 127.0.0.1:50063

Prints one JSON object. docs/integrating.md walks through it; tests/integrator runs it.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import uuid

import grpc
from lanesight.v1 import (
    alerts_pb2,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    events_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
)


def usd(cents: int) -> common_pb2.Money:
    """Money is integer minor units with its ISO 4217 currency, never a float."""
    return common_pb2.Money(amount_minor=cents, currency_code="USD")


def event(transaction_id: str = "", **payload) -> events_pb2.LaneEvent:
    """A POS event. The event id is yours and makes a resubmission harmless; the lane agent
    stamps store, lane, sequence and lane time (anything you put there is overwritten)."""
    return events_pb2.LaneEvent(
        event_id=str(uuid.uuid4()), transaction_id=transaction_id, **payload
    )


def sale(tx: str) -> list[events_pb2.LaneEvent]:
    """A sale: start, two items, the second voided, tender, end."""
    return [
        event(
            tx,
            transaction_started=events_pb2.TransactionStarted(
                operator_id="op-17", self_checkout=False, kind=events_pb2.TRANSACTION_KIND_SALE
            ),
        ),
        event(
            tx,
            item_added=events_pb2.ItemAdded(
                line_id="1",
                gtin="05000112637922",
                description="Oat drink 1 l",
                quantity=1,
                unit_price=usd(249),
                extended_price=usd(249),
                entry_method=events_pb2.ENTRY_METHOD_SCANNED,
            ),
        ),
        event(
            tx,
            item_added=events_pb2.ItemAdded(
                line_id="2",
                gtin="00012345678905",
                description="Soup",
                quantity=2,
                unit_price=usd(199),
                extended_price=usd(398),
                entry_method=events_pb2.ENTRY_METHOD_SCANNED,
            ),
        ),
        event(
            tx, item_voided=events_pb2.ItemVoided(line_id="2", operator_id="op-17", amount=usd(398))
        ),
        event(tx, tender_started=events_pb2.TenderStarted(total=usd(249))),
        event(
            tx,
            tender_completed=events_pb2.TenderCompleted(
                tender_type=events_pb2.TENDER_TYPE_CARD, amount=usd(249)
            ),
        ),
        event(
            tx,
            transaction_ended=events_pb2.TransactionEnded(
                total=usd(249), item_count=1, outcome=events_pb2.TRANSACTION_OUTCOME_COMPLETED
            ),
        ),
    ]


def refund(tx: str, original_tx: str) -> list[events_pb2.LaneEvent]:
    """A refund: a return transaction; money paid out is a negative tender and total."""
    return [
        event(tx, transaction_started=events_pb2.TransactionStarted(
            operator_id="op-17", kind=events_pb2.TRANSACTION_KIND_RETURN
        )),
        event(tx, refund_issued=events_pb2.RefundIssued(
            line_id="1", gtin="05000112637922", amount=usd(249), with_receipt=True,
            original_transaction_id=original_tx, operator_id="op-17",
        )),
        event(tx, tender_completed=events_pb2.TenderCompleted(
            tender_type=events_pb2.TENDER_TYPE_CASH, amount=usd(-249)
        )),
        event(tx, transaction_ended=events_pb2.TransactionEnded(
            total=usd(-249), item_count=1, outcome=events_pb2.TRANSACTION_OUTCOME_COMPLETED
        )),
    ]  # fmt: skip


def watch_alerts(watch, found: queue.Queue) -> None:
    """An attendant app's feed: every new alert of the store (and lane commands)."""
    try:
        for message in watch:
            if message.HasField("alert"):
                found.put(message.alert)
    except grpc.RpcError:
        pass  # cancelled at the end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lane", default="127.0.0.1:50061", help="the lane agent (device)")
    parser.add_argument("--fusion", default="127.0.0.1:50063", help="the lane's fusion shard")
    args = parser.parse_args()
    out: dict = {}
    with (
        grpc.insecure_channel(args.lane) as lane_channel,
        grpc.insecure_channel(args.fusion) as fusion_channel,
    ):
        lane = device_pb2_grpc.DeviceServiceStub(lane_channel)
        fusion = fusion_pb2_grpc.FusionServiceStub(fusion_channel)
        status = lane.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
        store_id, lane_id = status.lane.store_id, status.lane.lane_id
        out["lane"] = f"{store_id}/{lane_id}"

        # The watch streams alerts raised from now on; fusion answers with its headers once
        # the watch is in place, so wait for them before making anything happen.
        watch = fusion.WatchAlerts(
            fusion_pb2.WatchAlertsRequest(store_ids=[store_id], include_commands=True),
            timeout=60,
        )
        watch.initial_metadata()
        alerts: queue.Queue = queue.Queue()
        watcher = threading.Thread(target=watch_alerts, args=(watch, alerts))
        watcher.start()

        # 1. A sale, a refund and a no-sale. The reply comes once the events are durable
        #    at the lane; the agent forwards them to fusion in order.
        events = sale("T-1001") + refund("T-1002", "T-1001")
        events.append(event(no_sale_drawer_open=events_pb2.NoSaleDrawerOpen(operator_id="op-17")))
        reply = lane.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=events), timeout=10)
        out["sequences"] = list(reply.sequences)

        # 2. Resubmitting (after a timeout, say) is safe: same event ids, same sequences.
        again = lane.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=events), timeout=10)
        out["resubmit_same_sequences"] = list(again.sequences) == out["sequences"]

        # 3. Bad input is refused whole, with the field that is wrong.
        bad = event("T-1003", item_added=events_pb2.ItemAdded(
            line_id="1", gtin="00012345678905", quantity=1,
            unit_price=common_pb2.Money(amount_minor=100, currency_code="usd"),
            extended_price=usd(100),
        ))  # fmt: skip
        try:
            lane.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=[bad]), timeout=10)
        except grpc.RpcError as error:
            out["invalid"] = {"code": error.code().name, "details": error.details()}

        # 4. The no-sale drawer opening comes back as a POS-exception alert.
        alert = alerts.get(timeout=30)
        while alert.type != alerts_pb2.ALERT_TYPE_POS_EXCEPTION:
            alert = alerts.get(timeout=30)
        out["alert"] = {
            "type": alerts_pb2.AlertType.Name(alert.type),
            "kind": alerts_pb2.PosExceptionKind.Name(alert.pos_exception_kind),
            "severity": alerts_pb2.Severity.Name(alert.severity),
            "escalation": alerts_pb2.Escalation.Name(alert.escalation),
            "reason": alert.reason,
        }

        # 5. The attendant takes it and closes it with what happened.
        fusion.AcknowledgeAlert(
            fusion_pb2.AcknowledgeAlertRequest(alert_id=alert.alert_id, attendant_id="att-3"),
            timeout=10,
        )
        resolved = fusion.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(
                alert_id=alert.alert_id,
                attendant_id="att-3",
                disposition=alerts_pb2.DISPOSITION_NO_ACTION,
                note="change for the coffee machine",
            ),
            timeout=10,
        )
        out["resolved_state"] = alerts_pb2.AlertState.Name(resolved.alert.state)
        watch.cancel()
        watcher.join(timeout=5)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
