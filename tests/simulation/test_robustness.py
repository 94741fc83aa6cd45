"""The robustness harness: perturbations do what they say, labels are real, scores can fail."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType
from lanesight.fusion.config import FusionConfig
from lanesight.simulation.robustness import perturb
from lanesight.simulation.robustness.corpus import generate
from lanesight.simulation.robustness.labels import (
    GROCERY_DIR,
    LabelSampler,
    load_val_outputs,
)
from lanesight.simulation.robustness.matrix import format_matrix, run_matrix
from lanesight.simulation.robustness.scoring import TYPES, run_in_process, score
from lanesight.simulation.robustness.service import run_over_grpc
from lanesight.simulation.robustness.stores import STORES
from lanesight.simulation.robustness.stream import (
    BAGGING_SCALE,
    CAMERA,
    POS,
    SENSOR_SOURCES,
    Lane,
    to_lane_events,
)

pytestmark = pytest.mark.skipif(
    not (GROCERY_DIR / "val.txt").is_file(), reason="the grocery images are not here"
)


@pytest.fixture(scope="module")
def sampler() -> LabelSampler:
    return LabelSampler(load_val_outputs())


@pytest.fixture(scope="module")
def lanes(sampler) -> list[Lane]:
    return generate(3, 12, sampler)


def _sco(lanes: list[Lane]) -> Lane:
    return next(lane for lane in lanes if lane.self_checkout and len(lane.visits) > 3)


def _bagging(stream) -> list[ev.ScaleReading]:
    return [e.payload for e in stream if e.is_bagging_weight]


def _key(e) -> tuple:
    return (e.source, e.tag, repr(e.payload))


# ---- real model labels ----------------------------------------------------------------


def test_the_sampler_reads_only_held_out_val_photos(sampler):
    val = {
        line.split(",")[0].strip()
        for line in (GROCERY_DIR / "val.txt").read_text().split("\n")
        if line.strip()
    }
    train = {
        line.split(",")[0].strip()
        for line in (GROCERY_DIR / "train.txt").read_text().split("\n")
        if line.strip()
    }
    paths = {o.path for o in sampler.outputs}
    assert paths == val
    assert not paths & train
    # 60 classes have val photos; their outputs include the model's real confusions.
    assert len(sampler.by_class) == 60
    assert any(o.top_k[0][0] != o.true_label for o in sampler.outputs)


def test_a_recognition_is_a_real_val_photos_output_for_its_class(sampler):
    rng = random.Random(1)
    outputs = {o.top_k: o.true_label for o in sampler.outputs}
    for _ in range(50):
        ranked = sampler.draw(rng, "Banana")
        assert outputs[ranked] == "Banana"
    # A class without val photos gets no recognition; an item without a class, any photo's.
    assert not sampler.has_class("Plum")
    assert sampler.draw(rng, "Plum") == ()
    assert sampler.draw(rng, "") in outputs


def test_stress_mode_gives_confident_wrong_labels_at_its_rate(sampler):
    stressed = LabelSampler(sampler.outputs, stress=0.1)
    rng = random.Random(2)
    draws = [stressed.draw(rng, "Banana") for _ in range(2_000)]
    wrong = [d for d in draws if d[0][0] != "Banana" and d[0][1] >= 0.75]
    real = {o.top_k for o in sampler.outputs}
    invented = [d for d in draws if d not in real]
    assert 150 <= len(invented) <= 250
    assert all(d[0][0] != "Banana" and d[0][1] >= 0.75 for d in invented)
    assert len(wrong) >= len(invented)


# ---- perturbations --------------------------------------------------------------------


def test_lost_readings_drop_sensor_events_but_never_pos_events(lanes):
    lane = _sco(lanes)
    before = lane.stream()
    after = perturb.lost_readings(lane, random.Random(1), share=0.3)
    assert [_key(e) for e in after if e.source == POS] == [
        _key(e) for e in before if e.source == POS
    ]
    camera_before = Counter(_key(e) for e in before if e.source == CAMERA)
    camera_after = Counter(_key(e) for e in after if e.source == CAMERA)
    assert not camera_after - camera_before  # nothing invented
    assert sum(camera_after.values()) < 0.8 * sum(camera_before.values())
    # A lost settled weight comes back with the next poll unless the scale moved first.
    assert len(_bagging(after)) < len(_bagging(before))
    assert set(map(repr, _bagging(after))) <= set(map(repr, _bagging(before)))


def test_late_readings_move_behind_pos_events_but_keep_each_sources_order(lanes):
    lane = _sco(lanes)
    before = lane.stream()
    after = perturb.late_readings(lane, random.Random(1), bound_ms=1_500)
    for source in (*SENSOR_SOURCES, POS):
        assert [_key(e) for e in after if e.source == source] == [
            _key(e) for e in before if e.source == source
        ]
    moved = [e for e in after if e.source in SENSOR_SOURCES]
    assert all(0 <= e.at_ms - e.stamp_ms <= 1_500 for e in moved)
    assert any(e.at_ms - e.stamp_ms > 500 for e in moved)
    # Stamped when they happened: some sensor events now arrive after later POS events.
    events = to_lane_events(after, lane.store_id, lane.lane_id)
    times = [e.lane_time_ms for e in events]
    assert times != sorted(times)


def test_bags_lifted_after_the_next_start_stay_on_the_scale_into_it(lanes):
    lane = _sco(lanes)
    after = perturb.bags_lifted_after_start(lane, random.Random(4))
    late = [e for e in after if e.tag == "lift-late"]
    assert late, "some lift moved into the next transaction"
    starts = {e.transaction_id: e.at_ms for e in after if e.tag == "start"}
    for e in late:
        assert e.at_ms > starts[e.transaction_id]
    # The next shopper's first bagging readings include the old bags (a higher total).
    original = {
        (e.transaction_id, e.at_ms): e.payload.weight_mg
        for e in lane.stream()
        if e.is_bagging_weight
    }
    raised = [
        e
        for e in after
        if e.is_bagging_weight
        and e.tag.startswith("bag:")
        and e.payload.weight_mg > original.get((e.transaction_id, e.at_ms), 1 << 62)
    ]
    assert raised
    # No lift is left between the transactions: the old "lift" readings are gone.
    assert len([e for e in after if e.tag == "lift"]) < len(
        [e for e in lane.stream() if e.tag == "lift"]
    )


def test_own_bags_add_their_weight_until_the_bags_leave(lanes):
    lane = _sco(lanes)
    after = perturb.own_bags(lane, random.Random(2), share=1.0)
    bags = [e for e in after if e.tag == "ownbag" and e.is_bagging_weight]
    assert bags
    declared = [e for e in after if isinstance(e.payload, ev.OwnBagDeclared)]
    assert declared and len(declared) < len(bags)
    # Readings at the end (the bags lifted off) still read zero.
    assert all(
        e.payload.weight_mg == 0
        for e in after
        if e.tag == "lift" and e.payload.status is not ev.ScaleStatus.IN_MOTION
    )


def test_skip_bagging_keeps_heavy_items_off_the_scale_and_says_so(sampler):
    lanes = generate(5, 20, sampler)
    skipped_any = False
    for lane in (ln for ln in lanes if ln.self_checkout):
        after = perturb.skip_bagging(lane, random.Random(3))
        skips = [e for e in after if isinstance(e.payload, ev.BaggingSkipped)]
        for skip in skips:
            skipped_any = True
            line = skip.payload.line_id
            txn = skip.transaction_id
            assert not [e for e in after if e.transaction_id == txn and e.tag == f"bag:{line}"]
            added = [e for e in after if e.transaction_id == txn and e.tag == f"add:{line}"]
            assert added and added[0].at_ms < skip.at_ms
        # Settled readings never go below zero because an item was taken off twice.
        assert all(p.weight_mg >= 0 for p in _bagging(after))
    assert skipped_any


def test_negative_readings_replace_zero_with_a_few_grams_under(lanes):
    lane = _sco(lanes)
    after = perturb.negative_readings(lane, random.Random(1))
    readings = _bagging(after)
    assert not [p for p in readings if p.status is ev.ScaleStatus.ZERO]
    under = [p for p in readings if p.status is ev.ScaleStatus.UNDER_ZERO]
    assert under and all(-6_000 <= p.weight_mg < 0 for p in under)


def test_duplicates_resend_the_same_event_and_repeat_readings_as_new_ones(lanes):
    lane = _sco(lanes)
    events = to_lane_events(perturb.duplicates(lane, random.Random(1), 0.1), "s", "l")
    ids = Counter(e.event_id for e in events)
    assert any(n > 1 for n in ids.values())
    sequences = [e.sequence for e in events]
    assert len(set(sequences)) < len(sequences)
    assert len(set(sequences)) > len(lane.stream())  # plus repeated readings


def test_clock_jitter_offsets_sensor_stamps_only(lanes):
    lane = _sco(lanes)
    after = perturb.clock_jitter(lane, random.Random(1), bound_ms=300)
    assert [e.at_ms for e in after] == [e.at_ms for e in lane.stream()]
    for e in after:
        if e.source in SENSOR_SOURCES:
            assert abs(e.stamp_ms - e.at_ms) <= 340
        else:
            assert e.stamp_ms is None


def test_long_pauses_stretch_transactions_without_reordering_them(lanes):
    lane = _sco(lanes)
    after = perturb.long_pauses(lane, random.Random(1), share=1.0)
    assert [_key(e) for e in after] == [_key(e) for e in lane.stream()]
    assert (
        after[-1].at_ms - after[0].at_ms > lane.stream()[-1].at_ms - lane.stream()[0].at_ms + 45_000
    )


def test_long_pauses_never_leave_a_flickering_camera_dark_for_minutes(lanes):
    # A pause comes between two acts: never between a flicker's "dark" and its "ok".
    flickers = 0
    for visit in (v for lane in lanes for v in lane.visits):
        events = sorted(visit.events, key=lambda e: e.at_ms)
        calm = set(perturb._calm_points(events))
        for i, e in enumerate(events):
            p = e.payload
            if isinstance(p, ev.CameraHealthChanged) and p.health is ev.CameraHealth.OK:
                flickers += 1
                assert i not in calm, visit.transaction_id
    assert flickers


def test_a_flickering_zone_edge_is_stamped_by_the_camera_clock_of_the_crossing(lanes):
    # A late camera's crossings carry when they happened; the flicker that repeats one is
    # stamped the same way, moments after it, not when it reached the lane.
    lane = _sco(lanes)
    late = perturb._resplit(lane, perturb.late_readings(lane, random.Random(4), 1_500))
    stamped = [e for e in late.stream() if isinstance(e.payload, ev.ZoneCrossing)]
    assert stamped and all(e.stamp_ms is not None for e in stamped)
    after = perturb.zone_flicker(late, random.Random(4), share=1.0)
    crossings = [e for e in after if isinstance(e.payload, ev.ZoneCrossing)]
    assert len(crossings) > len(stamped)
    assert all(e.stamp_ms is not None and e.stamp_ms <= e.at_ms for e in crossings)


def test_produce_sold_by_weight_is_never_bagged_before_it_is_weighed(lanes):
    # It must lie on the produce scale to be weighed: it cannot be in the bag by then.
    weighed = 0
    for visit in (v for lane in lanes for v in lane.visits):
        events = sorted(visit.events, key=lambda e: e.at_ms)
        for i, e in enumerate(events):
            p = e.payload
            if isinstance(p, ev.ItemAdded) and p.unit_of_measure is ev.UnitOfMeasure.KILOGRAM:
                if p.entry_method is not ev.EntryMethod.PLU_LOOKUP:
                    continue
                weighed += 1
                earlier = [x.tag for x in events[:i] if x.is_bagging_weight]
                assert f"bag:{p.line_id}" not in earlier, visit.transaction_id
    assert weighed


def _camera_tracks(stream) -> set[str]:
    return {
        e.payload.track_id
        for e in stream
        if isinstance(e.payload, ev.ZoneCrossing | ev.ItemRecognized) and e.payload.track_id
    }


def test_tracker_switches_rename_items_on_their_way_and_change_nothing_else(lanes):
    lane = _sco(lanes)
    before = lane.stream()
    after = perturb.tracker_switches(lane, random.Random(2), share=0.5)
    assert len(after) == len(before)
    assert [_key(e) for e in after if e.source != CAMERA] == [
        _key(e) for e in before if e.source != CAMERA
    ]
    new = _camera_tracks(after) - _camera_tracks(before)
    assert new and all("~scan" in t or "~bagging" in t for t in new)


def test_ghost_and_twin_tracks_add_camera_events_only(lanes):
    lane = _sco(lanes)
    before = lane.stream()
    for step in (perturb.ghost_tracks, perturb.twin_tracks):
        after = step(lane, random.Random(3))
        assert len(after) > len(before), step.__name__
        known = {_key(b) for b in before}
        assert all(e.source == CAMERA for e in after if _key(e) not in known)
        assert [_key(e) for e in after if e.source != CAMERA] == [
            _key(e) for e in before if e.source != CAMERA
        ]


def test_vision_lag_delays_only_the_camera_and_keeps_its_order(lanes):
    lane = _sco(lanes)
    before = lane.stream()
    after = perturb.vision_lag(lane, random.Random(4))
    assert [_key(e) for e in after if e.source == CAMERA] == [
        _key(e) for e in before if e.source == CAMERA
    ]
    moved = [e for e in after if e.source == CAMERA]
    assert all(e.at_ms - e.stamp_ms >= 1_000 for e in moved)  # never ahead of the one before
    assert all(e.stamp_ms is None for e in after if e.source != CAMERA)


def test_pos_slow_stamps_pos_events_later_in_their_own_order_and_nothing_else(lanes):
    lane = _sco(lanes)
    before = lane.stream()
    after = perturb.pos_slow(lane, random.Random(6))
    assert [_key(e) for e in after if e.source == POS] == [
        _key(e) for e in before if e.source == POS
    ]
    assert [(e.at_ms, _key(e)) for e in after if e.source != POS] == [
        (e.at_ms, _key(e)) for e in before if e.source != POS
    ]
    pairs = zip(
        [e for e in before if e.source == POS], [e for e in after if e.source == POS], strict=True
    )
    lags = [b.at_ms - a.at_ms for a, b in pairs if isinstance(a.payload, ev.ItemAdded)]
    assert lags and all(100 <= lag <= 2_300 for lag in lags), lags
    assert all(e.stamp_ms is None for e in after if e.source == POS)  # stamped late


def test_camera_events_seconds_late_raise_no_more_false_alerts_over_grpc(lanes):
    # Fusion puts late events back in lane-time order before its rules see them.
    plain = [to_lane_events(lane.stream(), lane.store_id, lane.lane_id) for lane in lanes]
    lagged = [
        to_lane_events(perturb.vision_lag(lane, random.Random(i)), lane.store_id, lane.lane_id)
        for i, lane in enumerate(lanes)
    ]
    on_time, _ = run_over_grpc(plain)
    late, rejected = run_over_grpc(lagged)
    assert rejected == 0
    on_time_score, late_score = score(lanes, on_time), score(lanes, late)
    assert late_score.false_on_honest <= on_time_score.false_on_honest
    caught = lambda s: sum(c.caught for c in s.by_type.values())  # noqa: E731
    assert caught(late_score) >= caught(on_time_score) - 1


def _last_bag_weight(stream, transaction_id: str) -> list[int]:
    weights = [
        e.payload.weight_mg
        for e in stream
        if e.transaction_id == transaction_id and e.is_bagging_weight
    ]
    return weights[-1:]


def test_bag_later_puts_several_items_down_in_one_weight_change(lanes):
    changed = 0
    for lane in lanes:
        before = lane.stream()
        after = perturb.bag_later(lane, random.Random(5), share=1.0)
        assert [_key(e) for e in after if e.source == POS] == [
            _key(e) for e in before if e.source == POS
        ]
        dropped = len(_bagging(before)) - len(_bagging(after))
        assert dropped >= 0
        changed += dropped > 0
        for visit in lane.visits:  # each visit ends with the same weight in the bag
            tid = visit.transaction_id
            assert _last_bag_weight(after, tid) == _last_bag_weight(before, tid)
    assert changed


def test_next_shopper_early_brings_their_goods_into_the_cart_before_this_payment(lanes):
    lane = next(ln for ln in lanes if len(ln.visits) > 3)
    before = lane.stream()
    after = perturb.next_shopper_early(lane, random.Random(6), share=1.0)
    assert [_key(e) for e in after if e.source == POS] == [
        _key(e) for e in before if e.source == POS
    ]
    assert sorted(_key(e) for e in after if e.source == CAMERA and "Count" not in _key(e)[2]) == (
        sorted(_key(e) for e in before if e.source == CAMERA and "Count" not in _key(e)[2])
    )

    # The next visit's goods (their tracks) now show up before this visit's payment.
    def early(stream) -> int:
        tender = {e.transaction_id: e.at_ms for e in stream if e.tag == "tender"}
        order = [v.transaction_id for v in lane.visits]
        n = 0
        for this, following in zip(order, order[1:], strict=False):
            n += sum(
                1
                for e in stream
                if getattr(e.payload, "track_id", "").startswith(following + ".")
                and e.at_ms < tender.get(this, 0)
            )
        return n

    assert early(before) == 0 < early(after)


def test_every_perturbation_keeps_the_scale_source_and_numbers_events(lanes):
    for name, step in {**perturb.PERTURBATIONS, **perturb.BEYOND}.items():
        for lane in lanes:
            stream = step(lane, random.Random(name))
            events = to_lane_events(stream, lane.store_id, lane.lane_id)
            assert events, name
            assert all(
                e.source_device_id != BAGGING_SCALE or isinstance(e.payload, ev.ScaleReading)
                for e in events
            )


# ---- the matrix -----------------------------------------------------------------------


def test_a_small_matrix_runs_and_its_numbers_are_consistent(sampler):
    rows = {name: perturb.PERTURBATIONS[name] for name in ("none", "all at once")}
    matrix = run_matrix(1, 8, perturbations=rows, sampler=sampler, first_seed=7)
    assert list(matrix.rows) == ["none", "all at once"]
    for s in matrix.rows.values():
        assert s.transactions == 64
        assert s.rejected == 0
        staged = sum(c.staged for c in s.by_type.values())
        assert staged > 10
        for cell in s.by_type.values():
            assert 0 <= cell.caught <= cell.staged
        assert s.true_alerts + s.false_alerts == s.alerts
        assert s.precision is None or 0 <= s.precision <= 1
    text = format_matrix(matrix)
    assert "FA/100" in text and "all at once" in text


def test_an_engine_that_raises_nothing_scores_zero_recall(lanes):
    silent = FusionConfig(rules={"min_confidence": {t.rule_name: 1.0 for t in TYPES}})
    streams = [to_lane_events(lane.stream(), lane.store_id, lane.lane_id) for lane in lanes]
    alerts, _ = run_in_process(streams, silent)
    result = score(lanes, [a for a in alerts if a.confidence < 1.0])
    assert result.alerts == 0
    assert all(c.caught == 0 for c in result.by_type.values())
    assert sum(c.staged for c in result.by_type.values()) > 10


def test_without_scale_and_camera_only_pos_exceptions_are_caught(lanes):
    pos_only = [
        [
            e
            for e in to_lane_events(lane.stream(), lane.store_id, lane.lane_id)
            if e.source_device_id in (POS, "scanner-1")
        ]
        for lane in lanes
    ]
    blind = score(lanes, run_in_process(pos_only)[0])
    seeing = score(
        lanes,
        run_in_process([to_lane_events(ln.stream(), ln.store_id, ln.lane_id) for ln in lanes])[0],
    )
    for kind in (
        AlertType.ITEM_REMOVED_FROM_BAGGING,
        AlertType.MISSED_SCAN,
        AlertType.CAMERA_TAMPER,
    ):
        assert blind.by_type[kind].staged > 0
        assert blind.by_type[kind].caught == 0, kind
        assert seeing.by_type[kind].caught > 0, kind
    assert blind.by_type[AlertType.POS_EXCEPTION].caught > 0


def test_false_alerts_on_honest_transactions_count_against_the_engine(lanes):
    streams = [to_lane_events(lane.stream(), lane.store_id, lane.lane_id) for lane in lanes]
    alerts, _ = run_in_process(streams)
    honest = {v.transaction_id for lane in lanes for v in lane.visits if v.honest}
    clean = score(lanes, [a for a in alerts if a.transaction_id not in honest])
    # Pretend the engine also flagged every honest transaction once.
    template = next(iter(alerts))
    extra = []
    for lane in lanes:
        for v in lane.visits:
            if v.honest:
                fake = type(template)(**{s: getattr(template, s) for s in template.__slots__})
                fake.alert_id, fake.store_id, fake.lane_id = v.transaction_id, v.store_id, v.lane_id
                fake.transaction_id = v.transaction_id
                extra.append(fake)
    noisy = score(lanes, [a for a in alerts if a.transaction_id not in honest] + extra)
    assert clean.false_on_honest == 0
    assert noisy.false_on_honest == len(honest)
    assert noisy.false_per_100_honest == pytest.approx(100.0)


def test_the_matrix_over_grpc_matches_the_engine_in_process(lanes):
    streams = [to_lane_events(lane.stream(), lane.store_id, lane.lane_id) for lane in lanes]
    over_grpc, rejected = run_over_grpc(streams)
    in_process, _ = run_in_process(streams)
    assert rejected == 0
    summary = lambda alerts: Counter((a.transaction_id, a.type) for a in alerts)  # noqa: E731
    assert summary(over_grpc) == summary(in_process)


def test_stress_mode_stages_the_same_shoppers_with_other_labels(sampler):
    real = generate(9, 4, sampler)
    stressed = generate(9, 4, LabelSampler(sampler.outputs, stress=0.5))
    behaviours = [(v.transaction_id, v.behaviour, v.losses) for ln in real for v in ln.visits]
    assert behaviours == [
        (v.transaction_id, v.behaviour, v.losses) for ln in stressed for v in ln.visits
    ]

    def labels(lanes):
        return [
            e.payload.labels
            for ln in lanes
            for e in ln.stream()
            if isinstance(e.payload, ev.ItemRecognized)
        ]

    assert len(labels(real)) == len(labels(stressed))
    assert labels(real) != labels(stressed)


def test_excessive_voids_are_true_only_when_the_lane_saw_that_many(lanes):
    from lanesight.fusion.alerts import Alert, PosExceptionKind, Severity

    lane, visit, void = next(
        (ln, v, e)
        for ln in lanes
        for v in ln.visits
        for e in v.events
        if isinstance(e.payload, ev.ItemVoided)
    )
    alert = Alert(
        "a1",
        lane.store_id,
        lane.lane_id,
        visit.transaction_id,
        AlertType.POS_EXCEPTION,
        Severity.LOW,
        0.8,
        ev.Money(0, lane.currency),
        [],
        "voids",
        "review",
        void.at_ms + 10,
        "pos_exception",
        True,
        pos_exception_kind=PosExceptionKind.EXCESSIVE_VOIDS,
    )
    strict = score(lanes, [alert], config=FusionConfig(pos={"excessive_voids": 50}))
    lenient = score(lanes, [alert], config=FusionConfig(pos={"excessive_voids": 1}))
    assert (strict.true_alerts, strict.false_alerts) == (0, 1)
    assert (lenient.true_alerts, lenient.false_alerts) == (1, 0)


def test_eval_fusion_robustness_prints_the_matrix(capsys):
    from lanesight.common.cli import main

    argv = ["eval", "fusion", "--robustness", "--seeds", "1", "--transactions", "2"]
    assert main([*argv, "--stress", "0.1", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "real model labels" in out and "stress mode" in out
    assert "| all at once |" in out and "FA/100" in out


def test_all_at_once_keeps_every_pos_event_and_adds_only_shopper_declarations(lanes):
    lane = _sco(lanes)
    before = Counter(_key(e) for e in lane.stream() if e.source == POS)
    after = perturb.everything(lane, random.Random(5))
    sent = Counter(_key(e) for e in after if e.source == POS and not e.resend)
    assert not before - sent
    added = {type(e.payload) for e in after if e.source == POS and _key(e) not in before}
    assert added <= {ev.BaggingSkipped, ev.OwnBagDeclared}
    # Late sensor events keep the time they happened; jittered clocks move it a little.
    late = [e for e in after if e.source in SENSOR_SOURCES and e.stamp_ms is not None]
    assert late and all(e.stamp_ms - e.at_ms <= 340 for e in late)


def test_eval_fusion_robustness_names_a_bad_option(capsys):
    from lanesight.common.cli import main

    for bad, option in ((["--seeds", "0"], "--seeds"), (["--stress", "1.5"], "--stress")):
        with pytest.raises(SystemExit) as exited:
            main(["eval", "fusion", "--robustness", *bad])
        assert exited.value.code == 2
        assert option in capsys.readouterr().err


def test_eval_fusion_robustness_only_runs_the_named_rows(capsys):
    from lanesight.common.cli import main

    argv = ["eval", "fusion", "--robustness", "--seeds", "1", "--transactions", "2"]
    assert main([*argv, "--stress", "0", "--only", "none,all"]) == 0
    out = capsys.readouterr().out
    assert "\nnone " in out and "\nall at once " in out and "scale drift" not in out
    assert main([*argv, "--only", "nothing-like-this"]) == 2
    assert "matches none of" in capsys.readouterr().err


def test_eval_fusion_robustness_beyond_runs_the_rows_past_the_tuned_ranges(capsys):
    from lanesight.common.cli import main

    argv = ["eval", "fusion", "--robustness", "--seeds", "1", "--transactions", "2"]
    assert main([*argv, "--stress", "0", "--beyond", "--only", "none,30%,0.4-3x"]) == 0
    out = capsys.readouterr().out
    assert "\nlost readings 30% " in out and "\nshopper pace 0.4-3x " in out
    assert "all at once" not in out


def test_self_closed_and_wrong_currency_alerts_are_counted(lanes):
    from lanesight.fusion.alerts import Alert, Disposition, Severity

    lane, visit, loss = next(
        (ln, v, x) for ln in lanes for v in ln.visits for x in v.losses if ln.currency == "EUR"
    )
    alert = Alert(
        "a1",
        lane.store_id,
        lane.lane_id,
        visit.transaction_id,
        loss.type,
        Severity.LOW,
        0.8,
        ev.Money(150, "USD"),
        [],
        "check",
        "review",
        loss.at_ms,
        loss.type.rule_name,
        True,
        pos_exception_kind=loss.pos_kind,
        disposition=Disposition.SHOPPER_CORRECTED,
    )
    result = score(lanes, [alert])
    assert result.true_alerts == 1
    assert result.self_closed == 1
    assert result.wrong_currency == 1


def test_the_catalog_rows_change_what_fusion_is_told_about_packs_only():
    rng = random.Random(7)
    off = perturb.catalog_weights_off.fusion_stores(STORES, rng)
    missing = perturb.catalog_weights_missing.fusion_stores(STORES, random.Random(7))
    changed_off = changed_missing = packs = 0
    for store, told_off, told_missing in zip(STORES, off, missing, strict=True):
        for si, a, b in zip(store.items, told_off.items, told_missing.items, strict=True):
            if si.kind != "pack":
                assert a.item == si.item and b.item == si.item
                continue
            packs += 1
            if a.item != si.item:
                changed_off += 1
                ratio = a.item.min_weight_mg / si.item.min_weight_mg
                assert min(abs(ratio - f) for f in (0.7, 0.8, 1.25, 1.4)) < 0.01
            if b.item != si.item:
                changed_missing += 1
                assert (b.item.min_weight_mg, b.item.max_weight_mg) == (0, 0)
                assert not b.item.has_weight_range
    assert 0.05 * packs <= changed_off <= 0.3 * packs
    assert 0.15 * packs <= changed_missing <= 0.5 * packs
    net = perturb.catalog_weights_net.fusion_stores(STORES, random.Random(7))
    for store, told in zip(STORES, net, strict=True):
        for si, told_si in zip(store.items, told.items, strict=True):
            if si.kind != "pack" or not si.item.has_weight_range:
                assert told_si.item == si.item
                continue
            weight = told_si.item.min_weight_mg
            assert told_si.item.max_weight_mg == weight  # one weight, not a range
            middle = (si.item.min_weight_mg + si.item.max_weight_mg) / 2
            assert 0.87 <= weight / middle <= 0.96
