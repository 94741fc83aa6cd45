"""The engine around the rules: merging, duplicates, order, missing sources, lifecycle."""

from __future__ import annotations

import dataclasses

import pytest
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertState, AlertType, CommandKind, Disposition, Escalation
from lanesight.fusion.validation import StreamError, check_batch
from lanesight.simulation.scenarios.actions import (
    BAGGING,
    CART,
    CartItemCount,
    ItemCrossesZones,
    PeripheralHealth,
)

from .conftest import feed, make_engine
from .scripts import Script


def _pass_around(demo, script: Script | None = None) -> Script:
    """A pass-around at a self-checkout: the camera sees it and the scale weighs it."""
    s = script or Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    juice = demo["Tropicana-Mandarin-Morning"]
    s.at(
        3000,
        ItemCrossesZones(
            "pass", juice.vision_labels[0], CART, BAGGING, ((juice.vision_labels[0], 0.9),)
        ),
    )
    s.at(10, CartItemCount(0))
    s.place(905_000)
    return s


def test_camera_and_scale_signals_about_one_item_merge_into_one_alert(engine, demo):
    run = feed(engine, _pass_around(demo).pay(wait_ms=8000).finish().events())
    [alert] = run.alerts
    assert set(alert.merged_types) == {
        AlertType.MISSED_SCAN,
        AlertType.UNSCANNED_ITEM_IN_BAGGING,
    }
    assert alert.merged_signals == 2
    assert alert.confidence > 0.9  # two sources agree
    assert any(u.alert_id == alert.alert_id and u.merged_signals == 2 for u in run.updates)


def test_duplicates_by_sequence_and_by_event_id_are_skipped(engine, demo):
    events = _pass_around(demo).pay(wait_ms=8000).finish().events()
    first = engine.ingest(events[:10])
    again = engine.ingest(events[:10])  # the agent resends after a reconnect
    assert again.duplicates == 10 and again.acked_sequence == first.acked_sequence
    renumbered = dataclasses.replace(events[10], sequence=events[-1].sequence + 100)
    result = engine.ingest([events[10], renumbered])  # same event id, new sequence
    assert result.duplicates == 1
    assert engine.duplicates == 11


def test_resent_events_give_the_same_alerts_as_a_clean_run(demo_items, demo):
    events = _pass_around(demo).pay(wait_ms=8000).finish().events()
    clean = feed(make_engine(demo_items), events, batch=8)
    noisy = make_engine(demo_items)
    for start in range(0, len(events), 8):
        noisy.ingest(events[max(0, start - 5) : start + 8])  # overlapping resends
    noisy.flush()
    ids = sorted(a.alert_id for a in noisy.alerts.alerts.values())
    assert ids == sorted(a.alert_id for a in clean.alerts)


def test_vision_arriving_late_within_the_jitter_still_matches_its_scan(engine, demo):
    s = Script(self_checkout=False)
    milk = demo["Arla-Medium-Fat-Milk"]
    line = s.add_line(milk)
    s.at(
        200,
        ItemCrossesZones(
            "t1", milk.vision_labels[0], CART, BAGGING, ((milk.vision_labels[0], 0.9),)
        ),
    )
    events = s.events()
    # The crossing's frame was taken just before the scan but arrives after it.
    crossing = [e for e in events if isinstance(e.payload, ev.ZoneCrossing)]
    for event in crossing:
        event.lane_time_ms -= 400
    run = feed(engine, events)
    assert run.alerts == [] and line == "1"
    assert engine.lanes[("store-1", "lane-1")].late_events == 0


def test_vision_down_leaves_scale_rules_working_and_says_so(engine, demo):
    s = Script()
    s.at(
        0,
        PeripheralHealth("vision-link", ev.DeviceKind.VISION_LINK, ev.PeripheralState.DISCONNECTED),
    )
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(905_000, dt_ms=4000)
    s.pay(wait_ms=6000).finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.UNSCANNED_ITEM_IN_BAGGING
    assert alert.vision_available is False


def test_a_sequence_gap_is_counted_and_the_stream_moves_on(engine, demo):
    events = Script().events()
    first = engine.ingest(events[:1])
    later = dataclasses.replace(events[1], sequence=first.acked_sequence + 5)
    result = engine.ingest([later])
    assert result.gap_events == 4 and result.acked_sequence == later.sequence
    assert engine.lanes[later.lane_key].data_quality_issues == 1


def test_invalid_events_are_rejected_naming_the_field_and_still_acked(engine):
    base = ev.LaneEvent(
        "e1",
        "s",
        "l",
        1,
        1_000,
        ev.ScaleReading("b", ev.ScaleRole.BAGGING, ev.ScaleStatus.STABLE, -5),
    )
    bad_money = ev.LaneEvent(
        "e2",
        "s",
        "l",
        2,
        1_100,
        ev.ItemAdded("1", unit_price=ev.Money(100, "XXQ"), extended_price=ev.Money(100, "USD")),
        transaction_id="t-1",
    )
    no_id = dataclasses.replace(base, event_id="", sequence=3)
    no_payload = dataclasses.replace(base, event_id="e4", sequence=4, payload=None)
    result = engine.ingest([base, bad_money, no_id, no_payload])
    assert [(r.sequence, r.field) for r in result.rejections] == [
        (1, "scale_reading.weight_mg"),
        (2, "item_added.unit_price.currency_code"),
        (3, "event_id"),
        (4, "payload"),
    ]
    assert result.acked_sequence == 4


def test_stream_level_problems_name_the_field():
    a = ev.LaneEvent("a", "s", "l1", 5, 1, None)
    with pytest.raises(StreamError) as other_lane:
        check_batch([a, dataclasses.replace(a, event_id="b", lane_id="l2", sequence=6)], None)
    assert other_lane.value.field == "events[1].lane_id"
    with pytest.raises(StreamError) as backwards:
        check_batch([a, dataclasses.replace(a, event_id="b", sequence=4)], None)
    assert backwards.value.field == "events[1].sequence"
    with pytest.raises(StreamError) as earlier_lane:
        check_batch([a], ("s", "l9"))
    assert earlier_lane.value.field == "events[0].lane_id"


def test_replay_is_deterministic(demo_items, demo):
    events = _pass_around(demo).pay(wait_ms=8000).finish().events()
    one = feed(make_engine(demo_items), events)
    two = feed(make_engine(demo_items), events, batch=5)
    assert [(a.alert_id, a.raised_at_ms, a.confidence) for a in one.alerts] == [
        (a.alert_id, a.raised_at_ms, a.confidence) for a in two.alerts
    ]


def test_live_lane_clock_closes_windows_without_more_events(engine, demo):
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(905_000, dt_ms=4000)  # waits for a scan that never comes
    events = s.events()
    engine.ingest(events, received_mono_ms=10_000.0)
    assert engine.take_outputs() == []
    engine.tick(now_mono_ms=10_000.0 + 1_000)
    assert engine.take_outputs() == []
    engine.tick(now_mono_ms=10_000.0 + 5_000)
    alerts = [o.alert for o in engine.take_outputs() if hasattr(o, "alert")]
    assert [a.type for a in alerts] == [AlertType.UNSCANNED_ITEM_IN_BAGGING]


# ---- escalation, corrections, dispositions ------------------------------------------


def test_prompt_first_then_attendant_then_pause_at_tender(engine, demo):
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(1_041_000, dt_ms=4000)  # unscanned yoghurt
    s.at(20_000, CartItemCount(0))  # the prompt times out
    s.pay()
    run = feed(engine, s.events())
    [alert] = run.alerts
    kinds = [c.kind for c in run.commands]
    assert kinds[0] is CommandKind.PROMPT and run.commands[0].message == alert.reason
    assert CommandKind.PAUSE in kinds
    escalations = [u.escalation for u in run.updates if u.alert_id == alert.alert_id]
    assert Escalation.ATTENDANT in escalations and escalations[-1] is Escalation.PAUSE_LANE
    lane = engine.lanes[("store-1", "lane-1")]
    assert lane.paused
    engine.resolve(alert.alert_id, Disposition.RECOVERED, "att-7")
    resumed = [o for o in engine.take_outputs() if getattr(o, "kind", None) is CommandKind.RESUME]
    assert resumed and not lane.paused


def test_shopper_scanning_after_the_prompt_corrects_the_alert(engine, demo):
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    yoghurt = demo["Valio-Vanilla-Yoghurt"]
    s.place(1_041_000, dt_ms=4000)
    s.at(5000, CartItemCount(0))  # the alert is raised and prompted by now
    s.add_line(yoghurt)  # the shopper scans it
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.state is AlertState.RESOLVED
    assert alert.disposition is Disposition.SHOPPER_CORRECTED
    assert alert.resolved_by == "lane"
    assert alert.amount_recovered == alert.amount_at_risk


def test_lane_prompts_are_rate_limited(demo_items, demo):
    engine = make_engine(demo_items, escalation={"lane_interventions_per_minute": 1})
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(1_041_000, dt_ms=6000)
    s.place(905_000, dt_ms=6000)
    s.at(6000, CartItemCount(0))
    run = feed(engine, s.events())
    assert len(run.alerts) == 2
    prompts = [c for c in run.commands if c.kind is CommandKind.PROMPT]
    assert len(prompts) == 1
    assert {a.escalation for a in run.alerts} >= {Escalation.ATTENDANT}


def test_false_alerts_raise_the_rule_threshold_toward_the_target(demo_items, demo):
    engine = make_engine(
        demo_items,
        feedback={"min_samples": 4, "window": 10, "step": 0.05, "target_false_alert_rate": 0.25},
    )
    base = engine.tuner.threshold("store-1", "unscanned_item_in_bagging")
    for number in range(6):
        s = Script(transaction_id=f"T{number}", lane=f"lane-{number}")
        s.place(1_041_000, dt_ms=1000)
        s.pay(wait_ms=6000).finish()
        run = feed(engine, s.events())
        for alert in run.alerts:
            engine.resolve(alert.alert_id, Disposition.FALSE_ALERT, "att-1")
    raised = engine.tuner.threshold("store-1", "unscanned_item_in_bagging")
    assert raised > base
    assert engine.tuner.threshold("store-2", "unscanned_item_in_bagging") == base
    assert engine.tuner.take_dirty()[("store-1", "unscanned_item_in_bagging")] == raised
    # Honest outcomes bring it back down, never below the configured base.
    for _ in range(30):
        engine.tuner.record("store-1", "unscanned_item_in_bagging", Disposition.RECOVERED)
    assert engine.tuner.threshold("store-1", "unscanned_item_in_bagging") == base


def test_resolve_checks_its_input(engine, demo):
    run = feed(engine, _pass_around(demo).pay(wait_ms=8000).finish().events())
    alert_id = run.alerts[0].alert_id
    with pytest.raises(ValueError):
        engine.resolve(alert_id, Disposition.UNSPECIFIED, "att")
    with pytest.raises(KeyError):
        engine.resolve("no-such-alert", Disposition.FALSE_ALERT, "att")
    acked = engine.acknowledge(alert_id, "att-2")
    assert acked.state is AlertState.ACKNOWLEDGED and acked.acknowledged_by == "att-2"
    done = engine.resolve(alert_id, Disposition.HONEST_MISTAKE, "att-2", note="forgot")
    assert done.state is AlertState.RESOLVED and done.resolution_note == "forgot"


def test_a_store_policy_can_send_everything_to_the_attendant(demo_items, demo):
    engine = make_engine(demo_items, store_policies={"store-1": {"lane_prompt_rules": []}})
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(1_041_000, dt_ms=4000)
    s.at(6000, CartItemCount(0))
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.escalation is Escalation.ATTENDANT
    assert not [c for c in run.commands if c.kind is CommandKind.PROMPT]


def test_an_event_a_rule_chokes_on_is_recorded_not_fatal(engine, demo, monkeypatch):
    events = Script().events()

    def broken(lane, event, payload):
        raise RuntimeError("bug")

    monkeypatch.setitem(engine._handlers, ev.TransactionStarted, broken)
    result = engine.ingest(events)
    assert [r.field for r in result.rejections] == ["payload"]
    assert result.acked_sequence == events[-1].sequence
