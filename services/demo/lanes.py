"""One simulated lane: device simulators on real wire protocols, a lane agent, a POS."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import grpc
from lanesight.common.schema import POS_PAYLOADS
from lanesight.demo.plan import STORE_ID, LanePlan
from lanesight.demo.screen import LaneView
from lanesight.fusion import events as ev
from lanesight.fusion.convert import PAYLOAD_TYPE, event_to_pb
from lanesight.simulation.camera import SyntheticLaneCamera
from lanesight.simulation.devices import LaneSimulators, ScaleSpec
from lanesight.simulation.devices.lane import peripherals_toml
from lanesight.simulation.scenarios import actions as act
from lanesight.v1 import device_pb2, device_pb2_grpc

log = logging.getLogger(__name__)
BAGGING_SCALE = "bagging-scale-1"
PRODUCE_SCALE = "produce-scale-1"
# What the simulated POS submits to the agent: every POS payload of the API.
_POS_PAYLOADS = tuple(PAYLOAD_TYPE[name] for name in sorted(POS_PAYLOADS))


class SimulatedLane:
    """A lane's simulators, its agent's config, and the player of its plan."""

    def __init__(self, plan: LanePlan, view: LaneView, work_dir: Path) -> None:
        self.plan = plan
        self.view = view
        self.work_dir = work_dir
        self.sims: LaneSimulators | None = None
        self.channel: grpc.aio.Channel | None = None
        self.pos: device_pb2_grpc.DeviceServiceStub | None = None
        self.transaction_id = ""
        self.errors = 0
        self._pending: set[asyncio.Task] = set()
        # Produce suggestions at the scale: sets offered, and weighed PLU lines rung up
        # while suggestions were showing (with how many had the PLU in the top 3).
        self.suggestion_sets = 0
        self.suggested_lines = 0
        self.suggestion_hits = 0
        self._suggested: list[str] = []

    @property
    def camera_script(self) -> Path:
        return self.work_dir / f"{self.plan.lane_id}-camera.json"

    @property
    def config_path(self) -> Path:
        return self.work_dir / f"{self.plan.lane_id}.toml"

    async def start_simulators(self) -> None:
        """Start the scanner (pty), scales (socket://, 7E1) and printer (socket://)."""
        scales = [ScaleSpec(PRODUCE_SCALE, "nci", "produce", "socket")]
        if self.plan.self_checkout:
            scales.insert(0, ScaleSpec(BAGGING_SCALE, "8217", "bagging", "socket"))
        self.sims = await LaneSimulators.start(scanner="pty", scales=scales, printer="socket")

    def write_agent_config(self, base_config: str) -> Path:
        """The lane agent's config: the shared one plus its lane, devices and camera."""
        assert self.sims is not None
        zones = "\n".join(
            f'[[device.cameras.zones]]\nzone = "{name}"\npoints = {[list(p) for p in points]}\n'
            for name, points in SyntheticLaneCamera.zones()
        )
        lane = self.plan.lane_id
        text = (
            base_config
            + f'\n[device]\nlane_id = "{lane}"\n'
            + f'evidence_dir = "{self.work_dir / "evidence"}"\n'
            + f'\n[device.outbox]\npath = "{self.work_dir / (lane + "-outbox.db")}"\n'
            + 'synchronous = "normal"\n\n'
            + peripherals_toml(self.sims.peripherals(poll_interval_s=0.1))
            + '\n[[device.cameras]]\nid = "camera-1"\n'
            + 'source = "python:lanesight.demo.camera:lane_camera"\n'
            + "max_fps = 8.0\nkeyframe_interval_s = 2.0\n\n"
            + zones
            # The produce scale sits in the scan zone: its crop is what vision ranks PLUs on.
            + "\n[device.produce_suggestions]\nenabled = true\ndemo_catalog = true\n"
            + f"scale_zone = {[list(p) for p in dict(SyntheticLaneCamera.zones())['scan']]}\n"
        )
        self.config_path.write_text(text, encoding="utf-8")
        return self.config_path

    async def connect_pos(self, address: str) -> None:
        """The POS's connection to its lane agent."""
        self.channel = grpc.aio.insecure_channel(address)
        self.pos = device_pb2_grpc.DeviceServiceStub(self.channel)

    async def watch_suggestions(self) -> None:
        """Show the produce scale's PLU suggestions, as the customer display would."""
        assert self.pos is not None
        while True:
            try:
                stream = self.pos.WatchProduceSuggestions(
                    device_pb2.WatchProduceSuggestionsRequest()
                )
                async for response in stream:
                    got = response.suggestions
                    if got.cleared or not got.suggestions:
                        self._suggested = []
                        self.view.suggestions = got.detail if not got.cleared else ""
                        continue
                    self.suggestion_sets += 1
                    self._suggested = [s.plu for s in got.suggestions]
                    self.view.suggestions = "  ".join(
                        f"{s.plu} {s.description} {s.confidence:.0%}"
                        + (
                            f" {s.price_per_kg.amount_minor / 100:.2f}/kg"
                            if s.HasField("price_per_kg")
                            else ""
                        )
                        for s in got.suggestions[:3]
                    )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.CANCELLED:
                    return
                await asyncio.sleep(1.0)

    async def wait_devices_connected(self, address: str, timeout_s: float = 30.0) -> None:
        """Wait until the agent reports every peripheral connected (pyserial flushes on open)."""
        assert self.pos is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = await self.pos.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
            states = [p.state for p in status.peripherals]
            if states and all(s == 1 for s in states):  # PERIPHERAL_STATE_CONNECTED
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.plan.lane_id}: devices did not connect ({address})")

    async def play(self, epoch: float, stop: asyncio.Event) -> None:
        """Play the lane's live actions at their times until done or stopped."""
        for live in self.plan.live:
            delay = epoch + live.at_s - time.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            try:
                await self._perform(live.action, live.scenario.transaction_id)
            except (grpc.aio.AioRpcError, OSError) as exc:
                self.errors += 1
                log.warning("%s: %s failed: %s", self.plan.lane_id, type(live.action).__name__, exc)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _perform(self, action: act.Action, scenario_txn: str) -> None:
        assert self.sims is not None
        if isinstance(action, act.StartTransaction):
            self.transaction_id = action.transaction_id
            self.view.transaction_id, self.view.items, self.view.total_minor = (
                action.transaction_id,
                0,
                0,
            )
            self.view.status, self.view.prompt = "scanning", ""
        if isinstance(action, act.ScanBarcode):
            assert self.sims.scanner is not None
            await self.sims.scanner.scan(action.data)
            return
        txn = self.transaction_id or scenario_txn
        pos_events = []
        for offset_ms, payload, _device in action.payloads():
            if isinstance(payload, _POS_PAYLOADS):
                pos_events.append(self._pos_event(payload, txn))
            else:
                self._later(offset_ms / 1000, self._device_payload, payload)
        if pos_events:
            assert self.pos is not None
            await self.pos.SubmitPosEvents(
                device_pb2.SubmitPosEventsRequest(events=pos_events), timeout=5
            )
        self._update_view(action)
        if isinstance(action, act.EndTransaction):
            self.transaction_id = ""

    def _pos_event(self, payload: ev.Payload, transaction_id: str):
        # GTINs of 8, 12 or 13 digits are fine: the agent normalises them to 14.
        event = ev.LaneEvent(
            event_id=str(uuid.uuid4()),
            store_id=STORE_ID,
            lane_id=self.plan.lane_id,
            sequence=0,
            lane_time_ms=int(time.time() * 1000),
            payload=payload,
            transaction_id=transaction_id,
            source_device_id="pos",
        )
        return event_to_pb(event)

    def _later(self, delay_s: float, fn, *args) -> None:
        async def run() -> None:
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            fn(*args)

        task = asyncio.create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _device_payload(self, payload: ev.Payload) -> None:
        """Make a simulated device report what the payload says."""
        sims = self.sims
        assert sims is not None
        if isinstance(payload, ev.ScaleReading):
            scale_id = BAGGING_SCALE if payload.role is ev.ScaleRole.BAGGING else PRODUCE_SCALE
            if scale_id not in sims.scales:
                return
            scale = sims.scale(scale_id)
            status = payload.status
            if status is ev.ScaleStatus.IN_MOTION:
                scale.set_condition()
                scale.set_weight(scale.gross_mg + 37_000, stable=False)
            elif status in (ev.ScaleStatus.STABLE, ev.ScaleStatus.ZERO):
                scale.set_condition()
                scale.set_weight(payload.weight_mg, stable=True)
            elif status is ev.ScaleStatus.NOT_ZEROED:
                scale.set_condition(not_zeroed=True)
            elif status is ev.ScaleStatus.OVER_CAPACITY:
                scale.set_condition(over_capacity=True)
        elif isinstance(payload, ev.DrawerStateChanged) and sims.printer is not None:
            sims.printer.set_drawer_open(payload.state is ev.DrawerState.OPEN)
        elif isinstance(payload, ev.PrinterStatusChanged) and sims.printer is not None:
            paper = {
                ev.PaperStatus.NEAR_END: "near_end",
                ev.PaperStatus.OUT: "out",
            }.get(payload.paper, "adequate")
            sims.printer.set_paper(paper)
            sims.printer.set_cover_open(payload.cover_open)

    def _update_view(self, action: object) -> None:
        view = self.view
        if isinstance(action, act.AddItem):
            if action.plu and action.weight_mg and self._suggested:
                self.suggested_lines += 1
                self.suggestion_hits += action.plu in self._suggested[:3]
            view.items += 1
            view.total_minor += action.extended_price_minor
        elif isinstance(action, act.VoidItem):
            view.items = max(view.items - 1, 0)
            view.total_minor -= action.amount_minor
        elif isinstance(action, act.StartTender):
            view.status = "paying"
        elif isinstance(action, act.EndTransaction):
            view.status, view.prompt = "idle", ""
            view.transactions_done += 1
        elif isinstance(action, act.OpenDrawerNoSale):
            view.status = "no sale"

    async def close(self) -> None:
        """Close the POS channel and stop the simulators."""
        for task in list(self._pending):
            task.cancel()
        if self.channel is not None:
            await self.channel.close()
        if self.sims is not None:
            await self.sims.stop()
