"""A real store for the console tests: fusion, reporting and a lane agent on port 0 with
tokens on, and the console (its web server on port 0) in front of them.

Stores: store-a has lane-1 (a real lane agent, for pause/resume) and lane-2 (no agent);
store-b has lane-1. Attendant tokens are scoped to one store each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from lanesight.common.auth import hash_token
from lanesight.common.config import LanesightConfig, load_config
from lanesight.common.server import RunningServer, start_server
from lanesight.console.app import ConsoleApp
from lanesight.device.app import create_app as create_device
from lanesight.fusion.app import create_app as create_fusion
from lanesight.fusion.convert import event_to_pb
from lanesight.reporting.app import create_app as create_reporting
from lanesight.simulation.scenarios.actions import OpenDrawerNoSale
from lanesight.v1 import fusion_pb2, fusion_pb2_grpc

from tests.fusion.conftest import script_events

#: name -> (token, role, stores)
TOKENS = {
    "attendant-a": ("lst_console-attendant-a-5f1c2e", "attendant", ["store-a"]),
    "attendant-b": ("lst_console-attendant-b-9d7a41", "attendant", ["store-b"]),
    "console": ("lst_console-service-0b3e6a", "manager", ["*"]),
    "fusion": ("lst_console-fusion-forward-77c2", "service", ["*"]),
    "lane-a1": ("lst_console-lane-a1-3e8f0d", "lane_agent", ["store-a"]),
    "lane-b1": ("lst_console-lane-b1-61d2f4", "lane_agent", ["store-b"]),
    "pos-a": ("lst_console-pos-a-a81c55", "pos", ["store-a"]),
    "manager": ("lst_console-manager-4c0d93", "manager", ["*"]),
}


def token(name: str) -> str:
    return TOKENS[name][0]


def bearer(name: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(name)}"),)


def write_tokens(folder: Path) -> Path:
    lines = ["tokens:"]
    for name, (secret, role, stores) in TOKENS.items():
        lines += [
            f"  - name: {name}",
            f"    role: {role}",
            f"    stores: [{', '.join(repr(s) for s in stores)}]",
            f"    sha256: {hash_token(secret)}",
        ]
    path = folder / "tokens.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Store:
    """The running services and the console."""

    fusion: RunningServer
    reporting: RunningServer
    device: RunningServer
    console: RunningServer
    folder: Path
    #: The next sequence number of each lane's events (raise_no_sale).
    next_sequence: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def app(self) -> ConsoleApp:
        assert isinstance(self.console.app, ConsoleApp)
        return self.console.app

    @property
    def url(self) -> str:
        return self.app.url.rstrip("/")

    def address(self, running: RunningServer) -> str:
        return f"127.0.0.1:{running.port}"


def _config(folder: Path, tokens: Path, **environ: str) -> LanesightConfig:
    env = {
        "LANESIGHT_SERVER__GRACE_S": "0.5",
        "LANESIGHT_AUTH__ENABLED": "true",
        "LANESIGHT_AUTH__TOKENS_FILE": str(tokens),
        **environ,
    }
    return load_config(None, environ=env)


def _token_file(folder: Path, name: str) -> str:
    path = folder / f"{name}.token"
    path.write_text(token(name) + "\n")
    return str(path)


async def start_store(folder: Path, **console_env: str) -> Store:
    tokens = write_tokens(folder)
    started: list[RunningServer] = []
    try:
        reporting_config = _config(
            folder, tokens, LANESIGHT_REPORTING__DB_PATH=str(folder / "reporting.db")
        )
        reporting = await start_server(create_reporting(reporting_config), reporting_config, 0)
        started.append(reporting)
        fusion_config = _config(
            folder,
            tokens,
            LANESIGHT_FUSION__STORE_PATH=str(folder / "fusion.sqlite"),
            LANESIGHT_FUSION__TICK_MS="20",
            LANESIGHT_PEERS__REPORTING=f"127.0.0.1:{reporting.port}",
            LANESIGHT_AUTH__CLIENT_TOKEN_FILE=_token_file(folder, "fusion"),
        )
        fusion = await start_server(create_fusion(fusion_config), fusion_config, 0)
        started.append(fusion)
        device_config = _config(
            folder,
            tokens,
            LANESIGHT_STORE_ID="store-a",
            LANESIGHT_DEVICE__LANE_ID="lane-1",
            LANESIGHT_DEVICE__FUSION_LINK="false",
            LANESIGHT_DEVICE__FUSION_COMMANDS="false",
            LANESIGHT_DEVICE__VISION_LINK="false",
            LANESIGHT_DEVICE__OUTBOX__PATH=str(folder / "outbox.db"),
            LANESIGHT_DEVICE__EVIDENCE_DIR=str(folder / "evidence"),
        )
        device = await start_server(create_device(device_config), device_config, 0)
        started.append(device)
        lanes = (
            f'[{{store_id: store-a, lane_id: lane-1, device: "127.0.0.1:{device.port}"}},'
            " {store_id: store-a, lane_id: lane-2},"
            " {store_id: store-b, lane_id: lane-1}]"
        )
        console_config = _config(
            folder,
            tokens,
            LANESIGHT_AUTH__ENABLED="false",
            LANESIGHT_AUTH__CLIENT_TOKEN_FILE=_token_file(folder, "console"),
            LANESIGHT_PEERS__FUSION=f"127.0.0.1:{fusion.port}",
            LANESIGHT_PEERS__REPORTING=f"127.0.0.1:{reporting.port}",
            LANESIGHT_CONSOLE__HTTP_PORT="0",
            LANESIGHT_CONSOLE__LANES=lanes,
            LANESIGHT_CONSOLE__POLL_INTERVAL_S="0.2",
            **console_env,
        )
        console = await start_server(ConsoleApp(console_config), console_config, 0)
        started.append(console)
    except BaseException:
        for running in reversed(started):
            await running.stop()
        raise
    return Store(fusion, reporting, device, console, folder)


async def stop_store(store: Store) -> None:
    for running in (store.console, store.device, store.fusion, store.reporting):
        await running.stop()


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    running = await start_store(tmp_path)
    try:
        yield running
    finally:
        await stop_store(running)


async def raise_no_sale(store: Store, store_id: str = "store-a", lane_id: str = "lane-1") -> None:
    """Raise one POS-exception alert (a no-sale drawer open) through fusion's Ingest."""
    first = store.next_sequence.get((store_id, lane_id), 1)
    events = script_events(
        [(first * 1000, OpenDrawerNoSale("op-7"))],
        lane_id=lane_id,
        store_id=store_id,
        transaction_id="",
        first_sequence=first,
    )
    store.next_sequence[(store_id, lane_id)] = first + len(events)
    lane_token = "lane-a1" if store_id == "store-a" else "lane-b1"
    async with grpc.aio.insecure_channel(store.address(store.fusion)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        call = stub.Ingest(metadata=bearer(lane_token))
        await call.write(fusion_pb2.IngestRequest(events=[event_to_pb(e) for e in events]))
        reply = await call.read()
        assert reply.acked_sequence == first + len(events) - 1 and not reply.rejections, reply
        await call.done_writing()


async def sign_in(client: httpx.AsyncClient, name: str) -> httpx.Response:
    """Sign in through the form (nonce cookie + posted nonce), as a browser does."""
    page = await client.get("/signin")
    nonce = page.text.split('name="nonce" value="', 1)[1].split('"', 1)[0]
    return await client.post("/signin", data={"nonce": nonce, "token": token(name)})


def csrf_of(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
