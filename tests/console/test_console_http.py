"""The console over HTTP against real fusion, reporting and a lane agent: sign-in, CSRF,
store isolation, actions reaching fusion, reporting and the lane, live-update resume."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import grpc
import httpx
import pytest
from lanesight.common.server import start_server
from lanesight.device.camera.motion import encode_jpeg
from lanesight.device.evidence import BufferedFrame, write_alert_evidence
from lanesight.device.privacy import FaceBlurrer
from lanesight.fusion.app import create_app as create_fusion
from lanesight.v1 import (
    alerts_pb2,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    fusion_pb2,
    fusion_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
)

from tests.conftest import assert_eventually
from tests.device.test_evidence import astronaut_bgr

from .conftest import TOKENS, bearer, csrf_of, raise_no_sale, sign_in, token


def client(store) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=store.url, timeout=10, follow_redirects=False)


async def open_alerts(store, store_id="store-a", lane_id="lane-1") -> list[alerts_pb2.Alert]:
    async with grpc.aio.insecure_channel(store.address(store.fusion)) as channel:
        reply = await fusion_pb2_grpc.FusionServiceStub(channel).GetLaneState(
            fusion_pb2.GetLaneStateRequest(
                lane=common_pb2.LaneRef(store_id=store_id, lane_id=lane_id)
            ),
            metadata=bearer("manager"),
            timeout=5,
        )
    return list(reply.state.open_alerts)


async def test_sign_in_sets_a_strict_http_only_cookie_and_refuses_other_tokens(store):
    async with client(store) as web:
        assert (await web.get("/")).headers["location"] == "/signin"
        assert (await web.get("/events")).status_code == 401
        # A form posted without the sign-in page's nonce (login CSRF) is refused.
        refused = await web.post("/signin", data={"nonce": "x", "token": token("attendant-a")})
        assert refused.status_code == 403 and "lanesight_session" not in refused.headers.get(
            "set-cookie", ""
        )
        assert (await sign_in(web, "lane-a1")).status_code == 401  # not a console role
        wrong = await web.post("/signin", data={"nonce": "n", "token": "lst_nope"})
        assert wrong.status_code == 403
        ok = await sign_in(web, "attendant-a")
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"]
        assert "lanesight_session=" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert token("attendant-a") not in cookie
        page = await web.get("/")
        assert page.status_code == 200 and "attendant-a" in page.text
        assert "Content-Security-Policy" in page.headers and page.headers["cache-control"] == "no-store"
        assert (await web.get("/healthz")).json()["status"] == "serving"


async def test_an_alert_reaches_only_its_store_and_only_its_store_may_act(store, caplog):
    caplog.set_level(logging.DEBUG)
    await raise_no_sale(store)
    alert = (await assert_eventually(lambda: open_alerts(store)))[0]
    await assert_eventually(lambda: alert.alert_id in store.app.hub.alerts)
    async with client(store) as a, client(store) as b:
        await sign_in(a, "attendant-a")
        await sign_in(b, "attendant-b")
        page_a, page_b = await a.get("/"), await b.get("/")
        assert f'id="alert-{alert.alert_id}"' in page_a.text and 'id="lane-store-a-lane-1"' in page_a.text
        assert alert.alert_id not in page_b.text and "store-a" not in page_b.text
        assert 'id="lane-store-b-lane-1"' in page_b.text
        # Store B can neither open nor act on store A's alert or lane.
        assert (await b.get(f"/alerts/{alert.alert_id}")).status_code == 404
        csrf_b = csrf_of(page_b.text)
        for path, data in (
            (f"/alerts/{alert.alert_id}/acknowledge", {}),
            (f"/alerts/{alert.alert_id}/resolve", {"disposition": "false_alert"}),
            ("/lanes/store-a/lane-1/pause", {}),
        ):
            refused = await b.post(path, data={"csrf_token": csrf_b, **data})
            assert refused.status_code == 404, path
        assert [x.state for x in await open_alerts(store)] == [alerts_pb2.ALERT_STATE_OPEN]
        # Store B's live stream carries nothing of store A.
        async with b.stream("GET", "/events") as response:
            snapshot = await Events(response).next()
            assert snapshot["event"] == "snapshot" and "lane-store-b-lane-1" in snapshot["data"]
            assert "store-a" not in snapshot["data"] and alert.alert_id not in snapshot["data"]
        # A form without the session's CSRF token changes nothing.
        detail = await a.get(f"/alerts/{alert.alert_id}")
        assert detail.status_code == 200 and "I'm on it" in detail.text
        forged = await a.post(
            f"/alerts/{alert.alert_id}/resolve", data={"disposition": "false_alert"}
        )
        assert forged.status_code == 403
        assert [x.state for x in await open_alerts(store)] == [alerts_pb2.ALERT_STATE_OPEN]
        session_ids = [a.cookies["lanesight_session"], b.cookies["lanesight_session"]]
    # What the services log (not the test's own HTTP client) holds no token, no session id.
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert "signed in" in logged
    assert not [r for r in caplog.records if r.name == "uvicorn.access"]  # no access log
    for secret in [*(t for t, _, _ in TOKENS.values()), *session_ids]:
        assert secret not in logged


async def test_acknowledge_resolve_and_pause_reach_fusion_reporting_and_the_lane(store):
    await raise_no_sale(store)
    alert = (await assert_eventually(lambda: open_alerts(store)))[0]
    await assert_eventually(lambda: alert.alert_id in store.app.hub.alerts)
    device_channel = grpc.aio.insecure_channel(store.address(store.device))
    device = device_pb2_grpc.DeviceServiceStub(device_channel)
    lane_watch = device.WatchLaneCommands(
        device_pb2.WatchLaneCommandsRequest(), metadata=bearer("pos-a")
    )
    await assert_eventually(lambda: store.device.app.agent.commands.subscriber_count == 1)
    try:
        async with client(store) as web:
            await sign_in(web, "attendant-a")
            csrf = csrf_of((await web.get("/")).text)
            acked = await web.post(
                f"/alerts/{alert.alert_id}/acknowledge", data={"csrf_token": csrf}
            )
            assert acked.status_code == 303
            [seen] = await open_alerts(store)
            assert seen.state == alerts_pb2.ALERT_STATE_ACKNOWLEDGED
            assert seen.acknowledged_by == "attendant-a"
            paused = await web.post(
                "/lanes/store-a/lane-1/pause",
                data={
                    "csrf_token": csrf,
                    "back": f"/alerts/{alert.alert_id}",
                    "alert_id": alert.alert_id,
                },
            )
            assert paused.status_code == 303
            command = (await asyncio.wait_for(lane_watch.read(), 5)).command
            assert command.WhichOneof("action") == "pause" and command.lane_id == "lane-1"
            # Issued from the alert's page, the command names it (the lane keeps evidence).
            assert command.alert_id == alert.alert_id
            status = await device.GetDeviceStatus(
                device_pb2.GetDeviceStatusRequest(), metadata=bearer("manager"), timeout=5
            )
            assert status.paused
            assert "Resume lane" in (await web.get(f"/alerts/{alert.alert_id}")).text
            resolved = await web.post(
                f"/alerts/{alert.alert_id}/resolve",
                data={"csrf_token": csrf, "disposition": "honest_mistake", "note": "drawer test"},
            )
            assert resolved.status_code == 303
            assert await open_alerts(store) == []
            resumed = await web.post("/lanes/store-a/lane-1/resume", data={"csrf_token": csrf})
            assert resumed.status_code == 303
            assert (await asyncio.wait_for(lane_watch.read(), 5)).command.HasField("resume")
            # A lane without an agent cannot be paused, and says so.
            no_agent = await web.post("/lanes/store-a/lane-2/pause", data={"csrf_token": csrf})
            assert no_agent.status_code == 409 and "no lane agent" in no_agent.text
            bad = await web.post(
                f"/alerts/{alert.alert_id}/resolve", data={"csrf_token": csrf, "disposition": "x"}
            )
            assert bad.status_code in (400, 404)
    finally:
        lane_watch.cancel()
        await device_channel.close()

    async def in_reporting():
        async with grpc.aio.insecure_channel(store.address(store.reporting)) as channel:
            reply = await reporting_pb2_grpc.ReportingServiceStub(channel).ListAlerts(
                reporting_pb2.ListAlertsRequest(
                    filter=reporting_pb2.ReportFilter(store_ids=["store-a"]),
                    state=alerts_pb2.ALERT_STATE_RESOLVED,
                ),
                metadata=bearer("manager"),
                timeout=5,
            )
        return [a for a in reply.alerts if a.alert_id == alert.alert_id]

    [reported] = await assert_eventually(in_reporting, timeout_s=15)
    assert reported.disposition == alerts_pb2.DISPOSITION_HONEST_MISTAKE
    assert reported.resolved_by == "attendant-a" and reported.resolution_note == "drawer test"
    # The store view lists it under "Resolved recently", read back from reporting;
    # store B's does not.
    async with client(store) as a, client(store) as b:
        await sign_in(a, "attendant-a")
        await sign_in(b, "attendant-b")
        page_a, page_b = (await a.get("/")).text, (await b.get("/")).text
        resolved = page_a.split("Resolved recently", 1)[1]
        assert "Register activity to review · Lane 1 · Honest mistake · attendant-a" in resolved
        assert "Resolved recently" not in page_b


class Events:
    """Server-sent events of one streamed response, read one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, timeout_s: float = 5.0) -> dict:
        """The next event as {"id", "event", "data"} (comments and pings skipped)."""

        async def read() -> dict:
            current: dict = {}
            async for line in self._lines:
                if not line:
                    if "data" in current:
                        return current
                    current = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    current[name] = value.strip()
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), timeout_s)


@pytest.mark.parametrize("via", ["header", "query"])
async def test_a_reconnecting_browser_gets_exactly_what_it_missed(store, via):
    async with client(store) as web:
        await sign_in(web, "attendant-a")
        page = (await web.get("/")).text
        cursor = page.split('data-cursor="', 1)[1].split('"', 1)[0]
        await raise_no_sale(store)
        await raise_no_sale(store)
        alerts = await assert_eventually(
            lambda: len(store.app.hub.open_alerts(["store-a"])) == 2
            and store.app.hub.open_alerts(["store-a"])
        )
        ids = {a.alert_id for a in alerts}
        # Offline meanwhile: reconnecting with the last id seen replays both, once each.
        request = {"headers": {"Last-Event-ID": cursor}} if via == "header" else {
            "params": {"since": cursor}
        }
        async with web.stream("GET", "/events", **request) as response:
            events = Events(response)
            seen: list[dict] = []
            while {d.get("id") for d in seen if d.get("kind") == "alert"} != {
                f"alert-{i}" for i in ids
            }:
                event = await events.next()
                assert event["event"] == "change", event  # no snapshot: the cursor was good
                seen.append({**json.loads(event["data"]), "event_id": event["id"]})
            last = seen[-1]["event_id"]
        alert_rows = [d["id"] for d in seen if d["kind"] == "alert"]
        assert sorted(alert_rows) == sorted(f"alert-{i}" for i in ids)  # no repeats
        # Reconnecting with the newest id gets nothing again, then what happens next.
        async with web.stream("GET", "/events", headers={"Last-Event-ID": last}) as response:
            events = Events(response)
            await raise_no_sale(store)
            third = await assert_eventually(
                lambda: len(store.app.hub.open_alerts(["store-a"])) == 3
            )
            assert third
            nxt: list[dict] = []
            while not any(d["kind"] == "alert" for d in nxt):
                event = await events.next()
                nxt.append(json.loads(event["data"]))
            [row] = [d for d in nxt if d["kind"] == "alert"]
            assert row["id"] not in alert_rows and row["attention"] in (True, False)
        # A cursor from another run (or too old) gets a snapshot instead.
        async with web.stream("GET", "/events", headers={"Last-Event-ID": "feed-1"}) as response:
            event = await Events(response).next()
            assert event["event"] == "snapshot"
            assert all(f"alert-{i}" in json.loads(event["data"])["queue"] for i in ids)


async def test_the_alert_page_shows_the_lanes_face_blurred_evidence_frames(store):
    await raise_no_sale(store)
    alert = (await assert_eventually(lambda: open_alerts(store)))[0]
    await assert_eventually(lambda: alert.alert_id in store.app.hub.alerts)
    async with client(store) as a, client(store) as b:
        await sign_in(a, "attendant-a")
        await sign_in(b, "attendant-b")
        before = await a.get(f"/alerts/{alert.alert_id}")
        assert "No camera frames were kept for this alert" in before.text
        # The lane agent writes the frames around the alert (as it does after a command).
        now = time.time_ns()
        written = write_alert_evidence(
            store.folder / "evidence",
            alert.alert_id,
            {"cam-1": [BufferedFrame(now, encode_jpeg(astronaut_bgr(), 90))]},
            FaceBlurrer(),
            {"store_id": "store-a", "lane_id": "lane-1"},
        )
        assert written is not None and written.faces_blurred == 1
        store.app.hub._evidence.clear()  # the page read "none yet" a moment ago
        page = await a.get(f"/alerts/{alert.alert_id}")
        assert f'src="/alerts/{alert.alert_id}/evidence/0"' in page.text
        assert "Faces are blurred" in page.text
        image = await a.get(f"/alerts/{alert.alert_id}/evidence/0")
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        stored = store.folder / "evidence" / alert.alert_id / "cam-1-1.jpg"
        assert image.content == stored.read_bytes()
        assert (await a.get(f"/alerts/{alert.alert_id}/evidence/1")).status_code == 404
        assert (await b.get(f"/alerts/{alert.alert_id}/evidence/0")).status_code == 404


async def test_browsers_are_told_when_fusion_goes_and_the_console_resyncs_when_it_is_back(store):
    await raise_no_sale(store)
    [before] = await assert_eventually(lambda: open_alerts(store))
    await assert_eventually(lambda: store.app.hub.fusion_connected)
    async with client(store) as web:
        await sign_in(web, "attendant-a")
        page = (await web.get("/")).text
        cursor = page.split('data-cursor="', 1)[1].split('"', 1)[0]
        async with web.stream("GET", "/events", params={"since": cursor}) as response:
            events = Events(response)

            async def next_status() -> bool:
                while True:
                    data = json.loads((await events.next(timeout_s=15))["data"])
                    if data["kind"] == "status":
                        return data["connected"]

            # Fusion stops (its state is on disk): the page hears the lanes are unreachable.
            port, config = store.fusion.port, store.fusion.app.config
            await store.fusion.stop()
            assert await next_status() is False
            store.fusion = await start_server(create_fusion(config), config, port)
            assert await next_status() is True
        # Back: the open alert is still in the queue, and new alerts flow again.
        await raise_no_sale(store, lane_id="lane-2")
        alerts = await assert_eventually(
            lambda: len(store.app.hub.open_alerts(["store-a"])) == 2
            and store.app.hub.open_alerts(["store-a"])
        )
        assert before.alert_id in {a.alert_id for a in alerts}
        assert f'id="alert-{before.alert_id}"' in (await web.get("/")).text
