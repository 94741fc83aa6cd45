"""Vision's per-track recognition: later, better views of a track and what fusion makes of them.

The vision service reports a track's first ItemRecognized per zone, then updates whose labels
are the track's running aggregate (a carried item may read 0.16 first and 0.75 once it rests).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType, Disposition
from lanesight.fusion.lane import Track
from lanesight.simulation.scenarios.actions import BAGGING, CART, SCAN, Emitted, ItemCrossesZones

from .conftest import feed
from .scripts import Script

MILK = "Arla-Medium-Fat-Milk"  # $1.49
JUICE = "Tropicana-Mandarin-Morning"  # $4.29
YOGHURT = "Valio-Vanilla-Yoghurt"  # $3.29, weighs about what the milk does


@dataclass(frozen=True)
class Recognized:
    """Vision reports (again) what a track in ``zone`` looks like, without a crossing."""

    track_id: str
    zone: ev.LaneZone
    labels: tuple[tuple[str, float], ...]
    camera_id: str = "camera-1"

    def payloads(self) -> Emitted:
        labels = tuple(ev.LabelScore(label, score) for label, score in self.labels)
        rec = ev.ItemRecognized(self.camera_id, self.track_id, self.zone, labels)
        return [(0, rec, self.camera_id)]


def carried(s: Script, item, seen: str, later: str) -> str:
    """An item carried to the scanner: a poor first view (blur, a hand), the line of ``item``,
    then the settled item's better view and its way into the bag. Returns the line id."""
    track = s.track()
    s.cross(track, seen, CART, SCAN, labels=(("Kaiser", 0.30), (later, 0.16)))
    line = s.add_line(item)
    s.at(400, Recognized(track, SCAN, ((later, 0.75), ("Kaiser", 0.05))))
    s.at(800, ItemCrossesZones(track, seen, SCAN, BAGGING, ((later, 0.8), ("Kaiser", 0.04))))
    return line


def test_a_confident_view_outweighs_a_poor_one():
    track = Track("t1", 0, 0)
    track.add_recognition((ev.LabelScore("Kaiser", 0.30), ev.LabelScore(JUICE, 0.16)))
    track.add_recognition((ev.LabelScore(JUICE, 0.75), ev.LabelScore("Kaiser", 0.05)))
    best = track.best
    assert best is not None and best.label == JUICE
    # Each view weighs its top score squared (a plain mean would hold 0.455).
    assert best.score == pytest.approx((0.16 * 0.09 + 0.75 * 0.5625) / (0.09 + 0.5625))
    assert best.score >= 0.55


@pytest.mark.parametrize(("scanned", "seen", "alert"), [(MILK, MILK, False), (MILK, JUICE, True)])
def test_a_carried_item_is_judged_by_its_better_view(engine, demo, scanned, seen, alert):
    s = Script(self_checkout=False)
    carried(s, demo[scanned], seen, later=seen)
    s.pay().finish()
    run = feed(engine, s.events())
    assert run.of_type(AlertType.MISSED_SCAN) == []
    if not alert:
        assert run.alerts == []
        return
    [mismatch] = run.alerts
    assert mismatch.type is AlertType.ITEM_MISMATCH
    assert demo[JUICE].description in mismatch.reason
    expected = demo[JUICE].unit_price.amount_minor - demo[MILK].unit_price.amount_minor
    assert mismatch.amount_at_risk.amount_minor == expected
    assert mismatch.item.gtin == demo[MILK].gtins[0]


def test_a_late_better_view_of_a_switched_item_raises_one_item_mismatch(engine, demo):
    s = Script(self_checkout=False)
    milk = demo[MILK]
    track = s.track()
    # Unsure at first (a juice at 0.45, below what counts as evidence) when its line is linked.
    s.cross(track, JUICE, CART, SCAN, labels=((JUICE, 0.45), (MILK, 0.2)))
    s.add_line(milk)
    # The settled item: vision's running aggregate is now sure, then surer still.
    s.at(500, Recognized(track, SCAN, ((JUICE, 0.9), (MILK, 0.05))))
    s.at(300, Recognized(track, SCAN, ((JUICE, 0.95), (MILK, 0.03))))
    s.at(800, ItemCrossesZones(track, JUICE, SCAN, BAGGING, ((JUICE, 0.93),)))
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts  # one alert, however many updates followed
    assert alert.type is AlertType.ITEM_MISMATCH
    assert alert.merged_types == [AlertType.ITEM_MISMATCH]
    assert demo[JUICE].description in alert.reason
    assert alert.confidence >= 0.5


def test_an_honest_item_whose_first_view_was_wrong_but_unsure_raises_nothing(engine, demo):
    s = Script(self_checkout=False)
    track = s.track()
    s.cross(track, MILK, CART, SCAN, labels=((JUICE, 0.5), (MILK, 0.2)))
    s.add_line(demo[MILK])
    s.at(500, Recognized(track, SCAN, ((MILK, 0.7), (JUICE, 0.2))))
    s.at(300, Recognized(track, SCAN, ((MILK, 0.85), (JUICE, 0.1))))
    s.at(800, ItemCrossesZones(track, MILK, SCAN, BAGGING, ((MILK, 0.9),)))
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


def _switched_item_crossing_to_the_bag(demo) -> tuple[Script, str]:
    """The demo's barcode switch: a yoghurt with the milk's barcode, then into the bag."""
    s = Script()
    s.scan(demo["Arla-Sour-Cream"])
    track = s.track()
    s.cross(track, YOGHURT, CART, SCAN, labels=((YOGHURT, 0.81), ("Bravo-Orange-Juice", 0.02)))
    s.add_line(demo[MILK])
    s.at(700, ItemCrossesZones(track, YOGHURT, SCAN, BAGGING, ((YOGHURT, 0.81),)))
    s.place(1_040_000)
    return s, track


@pytest.mark.parametrize("resolved_first", [False, True])
def test_the_switched_items_own_track_crossing_to_the_bag_is_no_missed_scan(
    engine, demo, resolved_first
):
    s, track = _switched_item_crossing_to_the_bag(demo)
    s.pay().finish()
    events = s.events()
    crossing = next(
        i
        for i, e in enumerate(events)
        if isinstance(e.payload, ev.ZoneCrossing)
        and e.payload.track_id == track
        and e.payload.zone is BAGGING
        and e.payload.direction is ev.ZoneDirection.ENTERED
    )
    engine.ingest(events[:crossing])
    if resolved_first:  # the attendant already checked the item-mismatch alert
        for alert in list(engine.alerts.alerts.values()):
            engine.resolve(alert.alert_id, Disposition.RECOVERED, "att-1")
    run = feed(engine, events[crossing:])
    alerts = list(engine.alerts.alerts.values())
    [alert] = alerts
    assert alert.type is AlertType.ITEM_MISMATCH
    assert alert.merged_types == [AlertType.ITEM_MISMATCH]
    assert run.of_type(AlertType.MISSED_SCAN) == []


def test_an_earlier_view_of_a_linked_track_is_not_linked_to_the_next_line(engine, demo):
    s = Script(self_checkout=False)
    juice, milk = demo[JUICE], demo[MILK]
    track = s.track()
    s.cross(track, JUICE, CART, SCAN, labels=((JUICE, 0.9),))
    s.at(300, Recognized(track, SCAN, ((JUICE, 0.95),)))
    s.add_line(juice)  # linked to the juice's latest view
    s.add_line(milk)  # the milk's own view was lost: the juice's first view is not it
    s.at(800, ItemCrossesZones(track, JUICE, SCAN, BAGGING, ((JUICE, 0.93),)))
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


def test_a_better_view_after_the_crossing_lets_its_scan_cover_it(engine, demo):
    s = Script(self_checkout=False)
    track = s.track()
    # Only a confused view (juice, sure) before it reaches the bag: its scan is ruled out.
    s.cross(track, MILK, ev.LaneZone.UNSPECIFIED, CART, labels=((JUICE, 0.72),))
    s.at(100, ItemCrossesZones(track, MILK, CART, SCAN, ()))
    s.add_line(demo[MILK])
    # On its way into the bag vision sees the milk it is.
    s.at(800, ItemCrossesZones(track, MILK, SCAN, BAGGING, ((MILK, 0.91),)))
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []
