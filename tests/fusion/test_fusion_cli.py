"""`lanesight replay` and `lanesight simulate` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import sys

from lanesight.fusion.replay import batches, read_jsonl, write_jsonl

from tests.conftest import REPO_ROOT

from .test_fusion_engine import _pass_around


async def _run(*args: str, timeout_s: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lanesight",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    return proc.returncode, out.decode(), err.decode()


async def test_replay_feeds_a_recording_and_prints_the_alerts(fusion_server, demo, tmp_path):
    events = _pass_around(demo).pay(wait_ms=8000).finish().events()
    path = tmp_path / "lane.jsonl"
    write_jsonl(events + events[:5], path)  # the recording holds a resend too
    code, out, err = await _run(
        "replay", str(path), "--fusion", f"127.0.0.1:{fusion_server.port}", "--settle-s", "3"
    )
    assert code == 0, err
    assert "store-1/lane-1 T1 missed_scan" in out
    assert "Item may not have scanned" in out
    assert f"replayed {len(events) + 5} events on 1 lanes: 1 alerts" in out
    assert "5 duplicates, 0 rejected" in out


async def test_replay_reports_a_bad_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"eventId": "x", "sequence": "one"}\n')
    code, _, err = await _run("replay", str(path), "--fusion", "127.0.0.1:1")
    assert code == 2 and "bad.jsonl:1" in err


def test_jsonl_round_trip_and_batches(demo, tmp_path):
    events = _pass_around(demo).events()
    path = tmp_path / "x.jsonl"
    assert write_jsonl(events, path) == len(events)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["storeId"] == "store-1" and "laneTime" in first
    messages = read_jsonl(path)
    assert [m.sequence for m in messages] == [e.sequence for e in events]
    split = batches(messages + messages[:3], 7)
    assert all(len(b) <= 7 for b in split)
    assert split[-1][0].sequence == messages[0].sequence  # a resend starts a new batch


async def test_simulate_prints_the_quality_table_and_writes_events(tmp_path):
    out_path, truth = tmp_path / "sim.jsonl", tmp_path / "truth.json"
    code, out, err = await _run(
        "simulate",
        "--lanes",
        "2",
        "--transactions",
        "6",
        "--seed",
        "3",
        "--out",
        str(out_path),
        "--truth",
        str(truth),
        timeout_s=120,
    )
    assert code == 0, err
    assert "exception type" in out and "recall" in out and "FA/100" in out
    assert read_jsonl(out_path)
    assert len(json.loads(truth.read_text())) == 12
