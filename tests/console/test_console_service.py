"""The console as a service: `lanesight serve console` as a process, HTTPS with TLS
configured (and TLS towards fusion), and config errors that name the key."""

from __future__ import annotations

import re
import ssl

import httpx
import pytest
from lanesight.common.config import ConfigError, load_config
from lanesight.common.server import start_server
from lanesight.console.app import ConsoleApp, ConsoleError
from lanesight.fusion.app import create_app as create_fusion

from tests.conftest import assert_eventually, start_service_process
from tests.security.conftest import pki  # noqa: F401 - the fixture

from .conftest import sign_in, write_tokens


async def test_serve_console_runs_prints_its_url_and_stops_on_sigterm(tmp_path):
    tokens = write_tokens(tmp_path)
    config = tmp_path / "console.toml"
    config.write_text(
        f'[auth]\ntokens_file = "{tokens}"\n\n[console]\nhttp_port = 0\n\n'
        '[[console.lanes]]\nstore_id = "store-a"\nlane_id = "1"\n'
    )
    service = start_service_process("console", tmp_path, config)
    try:
        text = "".join(service.output)
        url = re.search(r"lanesight console web on (http://127\.0\.0\.1:\d+/)", text)
        assert url, text
        async with httpx.AsyncClient(base_url=url.group(1), timeout=10) as web:
            health = await web.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "serving"
            assert (await sign_in(web, "attendant-a")).status_code == 303
            page = await web.get("/")
            assert 'id="lane-store-a-1"' in page.text and "Lane 1" in page.text
    finally:
        assert service.terminate() == 0, "".join(service.output)


async def test_https_and_tls_to_fusion_with_secure_cookies(tmp_path, pki):  # noqa: F811
    tokens = write_tokens(tmp_path)
    tls_env = {
        "LANESIGHT_TLS__MODE": "tls",
        "LANESIGHT_TLS__CERT_FILE": str(pki.server_cert),
        "LANESIGHT_TLS__KEY_FILE": str(pki.server_key),
        "LANESIGHT_TLS__CA_FILE": str(pki.ca),
        "LANESIGHT_SERVER__GRACE_S": "0.5",
    }
    fusion_config = load_config(
        None,
        environ={
            **tls_env,
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "fusion.sqlite"),
            "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
        },
    )
    fusion = await start_server(create_fusion(fusion_config), fusion_config, 0)
    console_config = load_config(
        None,
        environ={
            **tls_env,
            "LANESIGHT_AUTH__TOKENS_FILE": str(tokens),
            "LANESIGHT_PEERS__FUSION": f"127.0.0.1:{fusion.port}",
            "LANESIGHT_CONSOLE__HTTP_PORT": "0",
            "LANESIGHT_CONSOLE__LANES": "[{store_id: store-a, lane_id: '1'}]",
        },
    )
    console = await start_server(ConsoleApp(console_config), console_config, 0)
    try:
        app = console.app
        assert isinstance(app, ConsoleApp) and app.url.startswith("https://127.0.0.1:")
        # The hub reached fusion over TLS (it re-reads lanes once the watch is up).
        await assert_eventually(lambda: app.hub is not None and app.hub.fusion_connected)
        trust = ssl.create_default_context(cafile=str(pki.ca))
        async with httpx.AsyncClient(base_url=app.url, verify=trust, timeout=10) as web:
            signed_in = await sign_in(web, "attendant-a")
            assert signed_in.status_code == 303
            cookie = signed_in.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie
        # Plain HTTP to the HTTPS port gets nothing.
        async with httpx.AsyncClient(
            base_url=app.url.replace("https", "http"), timeout=5
        ) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get("/healthz")
    finally:
        await console.stop()
        await fusion.stop()


async def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError) as duplicated:
        load_config(
            None,
            environ={
                "LANESIGHT_CONSOLE__LANES": "[{store_id: s, lane_id: '1'}, {store_id: s, lane_id: '1'}]"
            },
        )
    assert any(e.startswith("console.lanes") and "twice" in e for e in duplicated.value.errors)
    with pytest.raises(ConfigError) as bad_port:
        load_config(None, environ={"LANESIGHT_CONSOLE__HTTP_PORT": "70000"})
    assert any(e.startswith("console.http_port") for e in bad_port.value.errors)
    # Without a tokens file nobody could sign in: the console refuses to start, saying so.
    config = load_config(None, environ={"LANESIGHT_CONSOLE__HTTP_PORT": "0"})
    with pytest.raises(ConsoleError, match="auth.tokens_file"):
        await start_server(ConsoleApp(config), config, 0)
