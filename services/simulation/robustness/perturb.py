"""Perturbations of a lane's event stream: what real lanes do that simulators forget.

Each perturbation takes a lane (its visits, each with tagged events) and a seeded
``random.Random`` and returns the lane's whole stream, changed; ground truth stays as
the visits say (a perturbation never stages or hides a loss).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from lanesight.fusion import events as ev
from lanesight.fusion.catalog import CatalogItem
from lanesight.simulation.robustness.stores import Store
from lanesight.simulation.robustness.stream import (
    BAGGING_SCALE,
    CAMERA,
    POS,
    SENSOR_SOURCES,
    Emitted,
    Lane,
    Visit,
)

Perturbation = Callable[[Lane, random.Random], list[Emitted]]
Z = ev.LaneZone
_BAGGING_SKIPPED = getattr(ev, "BaggingSkipped", None)
_OWN_BAG_DECLARED = getattr(ev, "OwnBagDeclared", None)


def _reading(weight_mg: int, status: ev.ScaleStatus | None = None) -> ev.ScaleReading:
    if status is None:
        status = (
            ev.ScaleStatus.STABLE
            if weight_mg > 0
            else ev.ScaleStatus.ZERO
            if weight_mg == 0
            else ev.ScaleStatus.UNDER_ZERO
        )
    return ev.ScaleReading(BAGGING_SCALE, ev.ScaleRole.BAGGING, status, weight_mg)


def _shift_weight(e: Emitted, delta_mg: int) -> Emitted:
    """A bagging reading showing ``delta_mg`` more (a motion reading keeps its status)."""
    p = e.payload
    assert isinstance(p, ev.ScaleReading)
    weight = p.weight_mg + delta_mg
    if p.status is ev.ScaleStatus.IN_MOTION:
        return replace(e, payload=_reading(max(weight, 0), ev.ScaleStatus.IN_MOTION))
    return replace(e, payload=_reading(weight))


def _stable_before(events: list[Emitted], at_ms: int) -> int:
    """The last settled bagging weight shown before ``at_ms`` (0 when none)."""
    value = 0
    for e in events:
        if e.at_ms >= at_ms:
            break
        p = e.payload
        if e.is_bagging_weight and p.status is not ev.ScaleStatus.IN_MOTION:
            value = p.weight_mg
    return value


def _is_sale(visit: Visit) -> bool:
    return any(isinstance(e.payload, ev.ItemAdded) for e in visit.events)


# ---- lost, late, duplicated, jittered --------------------------------------------------


def none(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The corpus as generated."""
    return lane.stream()


def lost_readings(lane: Lane, rng: random.Random, share: float = 0.15) -> list[Emitted]:
    """A share of scale readings and camera events never arrive (POS events always do).

    A lost settled scale reading is not lost information for long: the agent polls the
    scale, so the same weight arrives with the next poll (0.5-2.5 s later) unless the
    scale moved again before that. Camera health is a state the vision service keeps
    reporting, so a lost change arrives with the next report (1-3 s later).
    """
    out: list[Emitted] = []
    stream = lane.stream()
    for index, e in enumerate(stream):
        if e.source not in SENSOR_SOURCES or rng.random() >= share:
            out.append(e)
            continue
        p = e.payload
        if isinstance(p, ev.CameraHealthChanged):
            # The next report says what the camera's state is then: the lost change only
            # if the camera did not change again meanwhile.
            report = e.at_ms + rng.randint(1_000, 3_000)
            changed = any(
                later.source == e.source
                and isinstance(later.payload, ev.CameraHealthChanged)
                and later.at_ms <= report
                for later in stream[index + 1 : index + 80]
            )
            if not changed:
                out.append(e.moved(report - e.at_ms))
        elif isinstance(p, ev.ScaleReading) and p.status is not ev.ScaleStatus.IN_MOTION:
            poll = e.at_ms + rng.randint(500, 2_500)
            moved = any(
                later.source == e.source and later.at_ms <= poll
                for later in stream[index + 1 : index + 40]
            )
            if not moved:
                out.append(e.moved(poll - e.at_ms))
    return sorted(out, key=lambda e: e.at_ms)


def late_readings(lane: Lane, rng: random.Random, bound_ms: int = 1_500) -> list[Emitted]:
    """Scale and camera events arrive up to ``bound_ms`` late, stamped when they happened.

    Each source's own events stay in order (one serial line, one camera stream); they
    only move behind POS events and each other's.
    """
    out: list[Emitted] = []
    last_arrival: dict[str, int] = {}
    for e in lane.stream():
        if e.source in SENSOR_SOURCES:
            arrival = max(e.at_ms + rng.randint(0, bound_ms), last_arrival.get(e.source, 0))
            last_arrival[e.source] = arrival
            e = replace(e, at_ms=arrival, stamp_ms=e.at_ms if e.stamp_ms is None else e.stamp_ms)
        out.append(e)
    return out


def duplicates(lane: Lane, rng: random.Random, share: float = 0.05) -> list[Emitted]:
    """Resends of events already sent, and sources repeating a reading as a new event."""
    out: list[Emitted] = []
    stream = lane.stream()
    for index, e in enumerate(stream):
        out.append(e)
        roll = rng.random()
        if roll < share:
            out.append(replace(e, resend=True))
        elif roll < 2 * share and (e.is_bagging_weight or isinstance(e.payload, ev.ItemRecognized)):
            # The scale re-sends its settled weight; the camera re-recognises the track.
            delay = rng.randint(50, 600)
            if e.is_bagging_weight and any(
                later.source == e.source and later.at_ms <= e.at_ms + delay
                for later in stream[index + 1 : index + 40]
            ):
                continue  # the scale moved meanwhile: it reports what is on it now
            stamp = None if e.stamp_ms is None else e.stamp_ms + delay
            out.append(replace(e, at_ms=e.at_ms + delay, stamp_ms=stamp))
    return sorted(out, key=lambda e: e.at_ms)


def clock_jitter(lane: Lane, rng: random.Random, bound_ms: int = 300) -> list[Emitted]:
    """The camera's and the scales' clocks are off the POS clock by up to ``bound_ms``."""
    offsets = {source: rng.randint(-bound_ms, bound_ms) for source in SENSOR_SOURCES}
    out = []
    for e in lane.stream():
        if e.source in offsets:
            happened = e.at_ms if e.stamp_ms is None else e.stamp_ms
            stamp = happened + offsets[e.source] + rng.randint(-40, 40)
            e = replace(e, stamp_ms=stamp)
        out.append(e)
    return out


def _calm_points(events: list[Emitted]) -> list[int]:
    """Indexes of the events a pause may come before: the scale is settled, nothing
    lifted out of the bag is on its way back, no barcode read is waiting for the POS
    to register its line (a read and its line are one act), and the camera is not in
    the middle of a flicker (a picture dark for a moment, not for minutes)."""
    calm: list[int] = []
    moving = False
    registering = False
    blind = False
    lifted: set[str] = set()
    for index, e in enumerate(events):
        if not moving and not lifted and not registering and not blind:
            calm.append(index)
        if isinstance(e.payload, ev.CameraHealthChanged):
            blind = e.payload.health is not ev.CameraHealth.OK
        if e.tag == "scan":
            registering = True
        elif e.tag.startswith("add:"):
            registering = False
        if e.is_bagging_weight:
            moving = e.payload.status is ev.ScaleStatus.IN_MOTION
            kind, _, line = e.tag.partition(":")
            if kind == "lift":
                lifted.add(line)
            elif kind == "bag":
                lifted.discard(line)
    return calm


def long_pauses(lane: Lane, rng: random.Random, share: float = 0.3) -> list[Emitted]:
    """Some shoppers stop mid-transaction for 45 s to 4 min (a phone call, a forgotten item)."""
    shift = 0
    out: list[Emitted] = []
    for visit in lane.visits:
        events = sorted(visit.events, key=lambda e: e.at_ms)
        pause_at, pause = 1 << 62, 0
        if len(events) > 4 and rng.random() < share:
            # Between two acts: not while the bagging scale settles, nor with an item
            # lifted out of the bag that goes straight back.
            calm = _calm_points(events)
            middle = [i for i in calm if len(events) // 4 <= i <= 3 * len(events) // 4]
            if middle:
                pause_at = events[rng.choice(middle)].at_ms
                pause = rng.randint(45_000, 240_000)
        out.extend(e.moved(shift + (pause if e.at_ms >= pause_at else 0)) for e in events)
        shift += pause
    return sorted(out, key=lambda e: e.at_ms)


def shopper_pace(
    lane: Lane, rng: random.Random, low: float = 0.6, high: float = 1.8
) -> list[Emitted]:
    """Each shopper works at their own pace: every gap in a visit is 0.6x to 1.8x as long
    (a practised regular, a first-timer), the scales and camera keeping up."""
    shift = 0
    out: list[Emitted] = []
    for visit in lane.visits:
        events = sorted(visit.events, key=lambda e: e.at_ms)
        if not events:
            continue
        pace = rng.uniform(low, high)
        first = events[0].at_ms
        for e in events:
            offset = e.at_ms - first
            out.append(e.moved(shift + int(offset * pace) - offset))
        shift += max(int((events[-1].at_ms - first) * (pace - 1)), 0)
    return sorted(out, key=lambda e: e.at_ms)


# ---- the bagging scale ------------------------------------------------------------------


def _lift_moved(lane: Lane, rng: random.Random, after_start: bool) -> list[Emitted]:
    visits = lane.visits
    if not lane.self_checkout:
        return lane.stream()
    out: list[Emitted] = []
    for index, visit in enumerate(visits):
        events = sorted(visit.events, key=lambda e: e.at_ms)
        nxt = visits[index + 1] if index + 1 < len(visits) else None
        lift = [e for e in events if e.tag == "lift"]
        if nxt is None or not lift or not _is_sale(nxt):
            out.extend(events)
            continue
        keep = [e for e in events if e.tag != "lift"]
        carry = _stable_before(events, lift[0].at_ms)
        start = min(e.at_ms for e in nxt.events if e.tag == "start")
        if not after_start:
            ended = max(e.at_ms for e in keep)
            at = max(start - rng.randint(100, 1_500), ended + 100)
            out.extend(keep)
            out.extend(replace(e, at_ms=at + (e.at_ms - lift[0].at_ms)) for e in lift)
            continue
        # The bags stay until just after the next start, or until its first item is bagged.
        first_bag = [e.at_ms for e in nxt.events if e.tag.startswith("bag:")]
        if first_bag and rng.random() < 0.5:
            at = first_bag[0] + rng.randint(300, 1_500)
        else:
            at = start + rng.randint(200, 5_000)
        out.extend(keep)
        next_events = sorted(nxt.events, key=lambda e: e.at_ms)
        settled = at + rng.randint(300, 800)
        shifted = [
            _shift_weight(e, carry) if e.is_bagging_weight and e.at_ms < settled else e
            for e in next_events
        ]
        # What the new shopper has on the scale once the old bags are off (an item they
        # put down meanwhile included).
        remaining = _stable_before(next_events, settled)
        # The lift's readings belong to the next visit's stream, so a lift of its own
        # bags later starts from what is really on the scale then.
        lifted = [
            Emitted(
                at,
                _reading(carry + _stable_before(next_events, at), ev.ScaleStatus.IN_MOTION),
                BAGGING_SCALE,
                nxt.transaction_id,
                "lift-late",
            ),
            Emitted(
                settled,
                _reading(remaining),
                BAGGING_SCALE,
                nxt.transaction_id,
                "lift-late",
            ),
        ]
        nxt.events[:] = shifted + lifted  # the next visit's readings carry the old bags
    return sorted(out, key=lambda e: e.at_ms)


def bags_lifted_before_start(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The previous shopper lifts their bags only just before the next one starts."""
    return _lift_moved(_copy(lane), rng, after_start=False)


def bags_lifted_after_start(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The previous shopper's bags leave the scale after the next transaction started."""
    return _lift_moved(_copy(lane), rng, after_start=True)


def _copy(lane: Lane) -> Lane:
    """A lane whose visits' event lists can be changed without touching the original."""
    visits = [replace(v, events=list(v.events)) for v in lane.visits]
    return replace(lane, visits=visits)


def own_bags(lane: Lane, rng: random.Random, share: float = 0.5) -> list[Emitted]:
    """Shoppers put their own bag down at the start, half of them declaring it on the POS."""
    if not lane.self_checkout:
        return lane.stream()
    out: list[Emitted] = []
    whole = lane.stream()  # what the scale shows depends on earlier shoppers' bags too
    for visit in lane.visits:
        events = sorted(visit.events, key=lambda e: e.at_ms)
        starts = [e.at_ms for e in events if e.tag == "start"]
        if not starts or not _is_sale(visit) or rng.random() >= share:
            out.extend(events)
            continue
        at = starts[0] + rng.randint(300, 2_500)
        bag_mg = rng.choice(
            (rng.randint(8_000, 30_000), rng.randint(40_000, 75_000), rng.randint(120_000, 350_000))
        )
        ended = [e.at_ms for e in events if e.tag == "lift"]
        until = ended[0] if ended else 1 << 62
        for e in events:
            if e.is_bagging_weight and at <= e.at_ms < until:
                e = _shift_weight(e, bag_mg)
            out.append(e)
        base = _stable_before(whole, at)
        out.append(
            Emitted(
                at,
                _reading(base + bag_mg, ev.ScaleStatus.IN_MOTION),
                BAGGING_SCALE,
                visit.transaction_id,
                "ownbag",
            )
        )
        out.append(
            Emitted(
                at + rng.randint(300, 800),
                _reading(base + bag_mg),
                BAGGING_SCALE,
                visit.transaction_id,
                "ownbag",
            )
        )
        if _OWN_BAG_DECLARED is not None and rng.random() < 0.5:
            measured = bag_mg if rng.random() < 0.5 else 0
            out.append(
                Emitted(
                    at + rng.randint(900, 2_000),
                    _OWN_BAG_DECLARED(measured),
                    POS,
                    visit.transaction_id,
                    "ownbag",
                )
            )
        if rng.random() < 0.4:
            out.append(
                Emitted(
                    at + 50,
                    ev.ZoneCrossing(
                        CAMERA, f"{visit.transaction_id}.bag", Z.BAGGING, ev.ZoneDirection.ENTERED
                    ),
                    CAMERA,
                    visit.transaction_id,
                    "ownbag",
                )
            )
    return sorted(out, key=lambda e: e.at_ms)


def skip_bagging(lane: Lane, rng: random.Random, heavy_mg: int = 1_800_000) -> list[Emitted]:
    """Heavy items stay in the cart: the shopper presses "skip bagging" after the scan."""
    if not lane.self_checkout or _BAGGING_SKIPPED is None:
        return lane.stream()
    out: list[Emitted] = []
    for visit in lane.visits:
        events = sorted(visit.events, key=lambda e: e.at_ms)
        placed: dict[str, tuple[int, int]] = {}  # line -> (when, weight) of skipped lines
        # Goods that leave the scale again (a void, lift and replace) are not skipped.
        moved = {e.tag.partition(":")[2] for e in events if e.tag.startswith(("unbag:", "lift:"))}
        previous = 0
        for e in events:
            if not e.is_bagging_weight or e.payload.status is ev.ScaleStatus.IN_MOTION:
                continue
            line = e.tag[4:] if e.tag.startswith("bag:") else ""
            delta = e.payload.weight_mg - previous
            previous = e.payload.weight_mg
            if line in visit.loss_lines or line in moved:
                continue
            if line and line not in placed and delta >= heavy_mg and rng.random() < 0.8:
                placed[line] = (e.at_ms, delta)
        if not placed:
            out.extend(events)
            continue
        added = {e.tag[4:]: e.at_ms for e in events if e.tag.startswith("add:")}
        # A skipped line stays in the cart as its units (the cart count counts units).
        units = {
            e.tag[4:]: e.payload.quantity
            for e in events
            if e.tag.startswith("add:") and isinstance(e.payload, ev.ItemAdded)
        }
        for e in events:
            if isinstance(e.payload, ev.QuantityChanged) and e.payload.line_id in units:
                units[e.payload.line_id] = e.payload.new_quantity
        for line, (at, _) in placed.items():
            start = added.get(line, at - 1_000)
            press = start + rng.randint(200, max(at - start - 50, 250))
            out.append(
                Emitted(press, _BAGGING_SKIPPED(line), POS, visit.transaction_id, f"skip:{line}")
            )
        for e in events:
            line = e.tag.partition(":")[2]
            if line in placed and e.tag.split(":")[0] in ("bag", "vbag", "unbag", "lift"):
                continue  # it never went to the bagging area
            gone = [(w, skipped) for skipped, (at, w) in placed.items() if at <= e.at_ms]
            if e.is_bagging_weight and e.tag != "lift" and gone:
                e = _shift_weight(e, -sum(w for w, _ in gone))
            elif isinstance(e.payload, ev.ZoneItemCount) and gone:
                count = e.payload.count + sum(max(units.get(s, 1), 1) for _, s in gone)
                e = replace(e, payload=ev.ZoneItemCount(CAMERA, Z.CART, count))
            out.append(e)
    return sorted(out, key=lambda e: e.at_ms)


def scale_drift(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The bagging scale drifts by a few grams over a transaction (temperature, a leaning hand)."""
    out = []
    rate = rng.uniform(1_000, 4_000) * rng.choice((-1, 1))  # mg per minute
    for visit in lane.visits:
        for e in visit.events:
            if e.is_bagging_weight:
                drift = int(max(min(rate * (e.at_ms - visit.start_ms) / 60_000, 8_000), -8_000))
                e = _shift_weight(e, drift)
            out.append(e)
    return sorted(out, key=lambda e: e.at_ms)


def negative_readings(lane: Lane, rng: random.Random) -> list[Emitted]:
    """An emptied bagging area reads a few grams under zero (UNDER_ZERO), not zero."""
    out = []
    for e in lane.stream():
        p = e.payload
        if e.is_bagging_weight and p.status is ev.ScaleStatus.ZERO:
            e = replace(e, payload=_reading(-rng.randint(1_000, 6_000)))
        out.append(e)
    return out


def bag_later(lane: Lane, rng: random.Random, share: float = 0.3) -> list[Emitted]:
    """Some self-checkout shoppers scan a few items into their hands (or onto the scanner
    shelf) and bag them together: 2 to 4 consecutive items reach the bag in one go, one
    weight change for all of them, after the last of them is scanned."""
    lane = _copy(lane)
    for visit in lane.visits:
        if not visit.self_checkout or not visit.honest or rng.random() >= share:
            continue
        events = visit.events
        # Lines bagged on their own, in order, with nothing else on the bagging scale
        # between the first and the last of a run.
        singles = [
            e.tag.removeprefix("bag:")
            for e in events
            if e.tag.startswith("bag:") and e.is_bagging_weight
        ]
        singles = list(dict.fromkeys(singles))
        if len(singles) < 2:
            continue
        size = rng.randint(2, min(4, len(singles)))
        start = rng.randrange(len(singles) - size + 1)
        run = singles[start : start + size]
        last = run[-1]
        first_bag = next(i for i, e in enumerate(events) if e.tag == f"bag:{run[0]}")
        last_bag = max(i for i, e in enumerate(events) if e.tag == f"bag:{last}")
        between = events[first_bag : last_bag + 1]
        if any(
            e.is_bagging_weight and not any(e.tag == f"bag:{line}" for line in run) for e in between
        ):
            continue
        moved = {f"vbag:{line}" for line in run[:-1]}
        dropped = {f"bag:{line}" for line in run[:-1]}
        at = min(e.at_ms for e in events if e.tag == f"vbag:{last}")
        kept = [e for e in events if e.tag not in moved and e.tag not in dropped]
        late = [e for e in events if e.tag in moved]
        shift = at - 150 * len(run) - min(e.at_ms for e in late)
        kept += [e.moved(shift + rng.randint(0, 100)) for e in late]
        visit.events[:] = sorted(kept, key=lambda e: e.at_ms)
        visit.quirks.append("bag_later")
    return lane.stream()


def _packs_told(
    stores: tuple[Store, ...], retell: Callable[[CatalogItem], CatalogItem]
) -> tuple[Store, ...]:
    """The stores' catalogs as fusion is told them: ``retell`` gives what it is told of
    each pack with a weight range (in catalog order); the goods are unchanged."""
    told = []
    for store in stores:
        items = tuple(
            replace(si, item=retell(si.item))
            if si.kind == "pack" and si.item.has_weight_range
            else si
            for si in store.items
        )
        told.append(replace(store, items=items))
    return tuple(told)


def _weights_off(stores: tuple[Store, ...], rng: random.Random) -> tuple[Store, ...]:
    """15 % of the packs' weights wrong (the range moved to 0.7, 0.8, 1.25 or 1.4 times the
    truth: a new supplier, a size change, a typo). The goods weigh what they weigh."""

    def retell(item: CatalogItem) -> CatalogItem:
        if rng.random() >= 0.15:
            return item
        f = rng.choice((0.7, 0.8, 1.25, 1.4))
        return replace(
            item,
            min_weight_mg=int(item.min_weight_mg * f),
            max_weight_mg=int(item.max_weight_mg * f),
        )

    return _packs_told(stores, retell)


def _weights_missing(stores: tuple[Store, ...], rng: random.Random) -> tuple[Store, ...]:
    """No weight for 30 % of the packs (many item masters have none, or only for some
    suppliers)."""
    return _packs_told(
        stores,
        lambda item: (
            replace(item, min_weight_mg=0, max_weight_mg=0) if rng.random() < 0.3 else item
        ),
    )


def _weights_net(stores: tuple[Store, ...], rng: random.Random) -> tuple[Store, ...]:
    """One weight per pack instead of a range: its net content, 5-12 % under what the pack
    weighs with its packaging (the weight many item masters hold)."""

    def retell(item: CatalogItem) -> CatalogItem:
        middle = (item.min_weight_mg + item.max_weight_mg) // 2
        net = int(middle * rng.uniform(0.88, 0.95))
        return replace(item, min_weight_mg=net, max_weight_mg=net)

    return _packs_told(stores, retell)


def next_shopper_early(lane: Lane, rng: random.Random, share: float = 0.5) -> list[Emitted]:
    """The next shopper starts unloading while this one is still paying: their goods come
    into the cart zone (the belt, the basket stand) 3 s before this shopper's payment
    starts, and the camera's count of the zone then holds both."""
    lane = _copy(lane)
    visits = lane.visits
    for this, following in zip(visits, visits[1:], strict=False):
        if rng.random() >= share:
            continue
        tender = next((e.at_ms for e in this.events if e.tag == "tender"), None)
        start = next((i for i, e in enumerate(following.events) if e.tag == "start"), 0)
        arriving = [
            e
            for e in following.events[:start]
            if e.source == CAMERA and not isinstance(e.payload, ev.ZoneItemCount)
        ]
        if tender is None or not arriving:
            continue
        shift = tender - 3_000 - arriving[0].at_ms
        if shift >= 0:
            continue
        counts = [
            e.payload.count
            for e in following.events[:start]
            if isinstance(e.payload, ev.ZoneItemCount)
        ]
        theirs = counts[-1] if counts else 0
        moved = {id(e) for e in arriving}
        following.events[:] = [e for e in following.events if id(e) not in moved]
        events = [
            replace(e, payload=replace(e.payload, count=e.payload.count + theirs))
            if isinstance(e.payload, ev.ZoneItemCount) and e.at_ms >= tender - 3_000
            else e
            for e in this.events
        ]
        events += [replace(e.moved(shift), transaction_id=this.transaction_id) for e in arriving]
        this.events[:] = sorted(events, key=lambda e: e.at_ms)
    return lane.stream()


def catalog_weights_off(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The events as generated; fusion's catalog has some pack weights wrong."""
    return lane.stream()


catalog_weights_off.fusion_stores = _weights_off  # type: ignore[attr-defined]


def catalog_weights_missing(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The events as generated; fusion's catalog has no weight for some packs."""
    return lane.stream()


catalog_weights_missing.fusion_stores = _weights_missing  # type: ignore[attr-defined]


def catalog_weights_net(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The events as generated; fusion's catalog gives the packs' net weights."""
    return lane.stream()


catalog_weights_net.fusion_stores = _weights_net  # type: ignore[attr-defined]


# ---- the camera's tracker -------------------------------------------------------------


def _with_track(e: Emitted, track_id: str) -> Emitted:
    return replace(e, payload=replace(e.payload, track_id=track_id))


def tracker_switches(lane: Lane, rng: random.Random, share: float = 0.15) -> list[Emitted]:
    """The tracker loses an item and picks it up again under a new track id.

    A share of the items entering the scan or bagging zone do so as a new track: from that
    crossing on, the item's events carry the new id (the old track ends where it was).
    """
    renamed: dict[str, str] = {}
    out: list[Emitted] = []
    for e in lane.stream():
        p = e.payload
        if isinstance(p, ev.ZoneCrossing | ev.ItemRecognized) and p.track_id:
            if (
                isinstance(p, ev.ZoneCrossing)
                and p.direction is ev.ZoneDirection.ENTERED
                and p.zone in (Z.SCAN, Z.BAGGING)
                and rng.random() < share
            ):
                renamed[p.track_id] = f"{renamed.get(p.track_id, p.track_id)}~{p.zone.name.lower()}"
            new_id = renamed.get(p.track_id)
            if new_id is not None:
                e = _with_track(e, new_id)
        out.append(e)
    return out


def ghost_tracks(lane: Lane, rng: random.Random, most: int = 2) -> list[Emitted]:
    """Things that are no item are tracked for a moment: a hand, a sleeve, a bag rearranged.

    Up to ``most`` per transaction enter the scan, bagging or cart zone, are recognised as
    what the model makes of them (a view taken from elsewhere in the lane: a real output)
    or not at all, and leave again within 1.5 s; nothing is scanned, nothing weighs.
    """
    views = [e.payload for e in lane.stream() if isinstance(e.payload, ev.ItemRecognized)]
    out = lane.stream()
    for visit in lane.visits:
        if not visit.events or not views:
            continue
        first, last = visit.events[0].at_ms, visit.events[-1].at_ms
        blind = _blind_spans(visit.events)
        for n in range(rng.randint(0, most)):
            at = rng.randint(first, max(first, last - 2_000))
            if any(start - 2_000 <= at <= end for start, end in blind):
                continue  # a covered or dark camera tracks nothing
            zone = rng.choice((Z.SCAN, Z.SCAN, Z.BAGGING, Z.CART))
            track = f"{visit.transaction_id}.ghost{n}"
            tid = visit.transaction_id
            entered = ev.ZoneCrossing(CAMERA, track, zone, ev.ZoneDirection.ENTERED)
            out.append(Emitted(at, entered, CAMERA, tid, "ghost"))
            if rng.random() < 0.6:
                seen = rng.choice(views)
                view = ev.ItemRecognized(CAMERA, track, zone, seen.labels)
                out.append(Emitted(at + rng.randint(80, 400), view, CAMERA, tid, "ghost"))
            left = ev.ZoneCrossing(CAMERA, track, zone, ev.ZoneDirection.LEFT)
            out.append(Emitted(at + rng.randint(500, 1_500), left, CAMERA, tid, "ghost"))
    return sorted(out, key=lambda e: e.at_ms)


def twin_tracks(lane: Lane, rng: random.Random, share: float = 0.1) -> list[Emitted]:
    """The tracker follows some items as two tracks at once (the item and the hand holding
    it, or a box split in two): a twin mirrors a share of the items' crossings and views
    from the moment it appears until the item settles, a few frames apart."""
    twins: dict[str, str] = {}
    out: list[Emitted] = []
    for e in lane.stream():
        out.append(e)
        p = e.payload
        if not isinstance(p, ev.ZoneCrossing | ev.ItemRecognized) or not p.track_id:
            continue
        twin = twins.get(p.track_id)
        if (
            twin is None
            and isinstance(p, ev.ZoneCrossing)
            and p.direction is ev.ZoneDirection.ENTERED
            and p.zone is Z.SCAN
            and rng.random() < share
        ):
            twin = twins[p.track_id] = f"{p.track_id}+twin"
        if twin is not None:
            out.append(replace(_with_track(e, twin), at_ms=e.at_ms + rng.randint(30, 200)))
    return sorted(out, key=lambda e: e.at_ms)


def vision_lag(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The camera's events arrive 1-3 s late (a busy GPU batching many lanes), stamped
    when they happened, in their own order."""
    out: list[Emitted] = []
    last = 0
    for e in lane.stream():
        if e.source == CAMERA:
            arrival = max(e.at_ms + rng.randint(1_000, 3_000), last)
            last = arrival
            e = replace(e, at_ms=arrival, stamp_ms=e.at_ms if e.stamp_ms is None else e.stamp_ms)
        out.append(e)
    return sorted(out, key=lambda e: e.at_ms)


def pos_slow(lane: Lane, rng: random.Random) -> list[Emitted]:
    """The POS registers what happens 0.4-2 s late (a slow item lookup, a busy store
    server): its events are stamped when it registers them, in their own order, a
    latency that differs by lane visit, plus up to 0.3 s either way per event. The
    scanner's reads, the scales and the camera are on time."""
    out: list[Emitted] = []
    last = 0
    for visit in lane.visits:
        latency = rng.randint(400, 2_000)
        for e in visit.events:
            if e.source == POS:
                shift = 0 if isinstance(e.payload, ev.TransactionStarted) else latency
                at = max(e.at_ms + shift + rng.randint(-300, 300), last + 1, e.at_ms)
                last = at
                e = e.moved(at - e.at_ms)
            out.append(e)
    return sorted(out, key=lambda e: e.at_ms)


def _blind_spans(events: list[Emitted]) -> list[tuple[int, int]]:
    """The spans (ms) in which the camera reported itself unable to see."""
    spans: list[tuple[int, int]] = []
    since: int | None = None
    for e in events:
        p = e.payload
        if isinstance(p, ev.CameraHealthChanged):
            if p.health is not ev.CameraHealth.OK and since is None:
                since = e.at_ms
            elif p.health is ev.CameraHealth.OK and since is not None:
                spans.append((since, e.at_ms))
                since = None
    if since is not None:
        spans.append((since, events[-1].at_ms))
    return spans


def zone_flicker(lane: Lane, rng: random.Random, share: float = 0.15) -> list[Emitted]:
    """An item held on a zone's border leaves and enters it again at once (the tracker's
    box straddles the line)."""
    out: list[Emitted] = []
    for e in lane.stream():
        out.append(e)
        p = e.payload
        if (
            isinstance(p, ev.ZoneCrossing)
            and p.direction is ev.ZoneDirection.ENTERED
            and p.zone is not Z.UNSPECIFIED
            and rng.random() < share
        ):
            # (Stamped by the camera's clock as the crossing it repeats was, a late one too.)
            gap = rng.randint(60, 250)
            left = replace(p, direction=ev.ZoneDirection.LEFT)
            out.append(replace(e.moved(gap), payload=left))
            out.append(e.moved(2 * gap))
    return sorted(out, key=lambda e: e.at_ms)


def _steps(*steps: Perturbation) -> Perturbation:
    """Several perturbations, one after the other, each on what the last one left."""

    def stacked(lane: Lane, rng: random.Random) -> list[Emitted]:
        lane = _copy(lane)
        for step in steps:
            lane = _resplit(lane, step(lane, rng))
        return lane.stream()

    return stacked


# Every perturbation at once (bags lifted after the next start), at lower rates. What is on
# the scale changes first (own bags, items left in the cart), then the bags, as they then
# are, leave after the next start.
everything: Perturbation = _steps(
    own_bags,
    skip_bagging,
    lambda ln, r: bags_lifted_after_start(ln, r),
    scale_drift,
    negative_readings,
    lambda ln, r: lost_readings(ln, r, 0.05),
    lambda ln, r: late_readings(ln, r, 800),
    pos_slow,
    clock_jitter,
    lambda ln, r: duplicates(ln, r, 0.02),
    lambda ln, r: long_pauses(ln, r, 0.15),
    lambda ln, r: tracker_switches(ln, r, 0.05),
    lambda ln, r: ghost_tracks(ln, r, 1),
    lambda ln, r: zone_flicker(ln, r, 0.05),
    lambda ln, r: twin_tracks(ln, r, 0.05),
    lambda ln, r: next_shopper_early(ln, r, 0.2),
)


def _resplit(lane: Lane, stream: list[Emitted]) -> Lane:
    """Re-split a perturbed stream into the lane's visits (by transaction id) for the next step."""
    by_txn: dict[str, list[Emitted]] = {v.transaction_id: [] for v in lane.visits}
    for e in stream:
        by_txn.setdefault(e.transaction_id, []).append(e)
    visits = [replace(v, events=by_txn[v.transaction_id]) for v in lane.visits]
    return replace(lane, visits=visits)


PERTURBATIONS: dict[str, Perturbation] = {
    "none": none,
    "lost readings 15%": lost_readings,
    "late readings <=1.5 s": late_readings,
    "bags lifted before next start": bags_lifted_before_start,
    "bags lifted after next start": bags_lifted_after_start,
    "own bags (half declared)": own_bags,
    "skip bagging heavy items": skip_bagging,
    "scale drift": scale_drift,
    "negative readings": negative_readings,
    "long pauses": long_pauses,
    "shopper pace 0.6-1.8x": shopper_pace,
    "duplicates": duplicates,
    "clock jitter +-300 ms": clock_jitter,
    "tracker id switches": tracker_switches,
    "ghost tracks": ghost_tracks,
    "zone flicker": zone_flicker,
    "twin tracks": twin_tracks,
    "several items bagged at once": bag_later,
    "vision 1-3 s late": vision_lag,
    "POS 0.4-2 s slow": pos_slow,
    "next shopper unloads early": next_shopper_early,
    "catalog weights 15% wrong": catalog_weights_off,
    "no catalog weight for 30% of packs": catalog_weights_missing,
    "catalog gives net weights": catalog_weights_net,
    "all at once": everything,
}


# Past the ranges the rows above were tuned on (`--beyond`): how gracefully fusion degrades
# when a lane is worse than anything it was fitted to (twice the losses, longer delays,
# slower shoppers, more tracker faults), not targets it meets.
BEYOND: dict[str, Perturbation] = {
    "none": none,
    "lost readings 30%": lambda ln, r: lost_readings(ln, r, 0.30),
    "late readings <=3 s": lambda ln, r: late_readings(ln, r, 3_000),
    "clock jitter +-800 ms": lambda ln, r: clock_jitter(ln, r, 800),
    "shopper pace 0.4-3x": lambda ln, r: shopper_pace(ln, r, 0.4, 3.0),
    "long pauses in 70%": lambda ln, r: long_pauses(ln, r, 0.7),
    "duplicates 20%": lambda ln, r: duplicates(ln, r, 0.2),
    "tracker id switches 35%": lambda ln, r: tracker_switches(ln, r, 0.35),
    "up to 5 ghost tracks": lambda ln, r: ghost_tracks(ln, r, 5),
    "zone flicker 35%": lambda ln, r: zone_flicker(ln, r, 0.35),
    "twin tracks 25%": lambda ln, r: twin_tracks(ln, r, 0.25),
    "several bagged at once 70%": lambda ln, r: bag_later(ln, r, 0.7),
    "vision late and POS slow": _steps(vision_lag, pos_slow),
    "lost 15%, late 1.5 s, jitter": _steps(
        lambda ln, r: lost_readings(ln, r, 0.15),
        lambda ln, r: late_readings(ln, r, 1_500),
        clock_jitter,
    ),
}
