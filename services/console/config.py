"""Configuration of the attendant console (the [console] section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ConsoleLane(BaseModel):
    """One lane the console shows, and where its lane agent (device service) listens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: str = Field(min_length=1, max_length=64)
    lane_id: str = Field(min_length=1, max_length=64)
    # The lane agent's gRPC address (host:port) for device health and pause/resume;
    # empty: the lane has no agent the console can reach (no health, no pause).
    device: str = ""


class ConsoleConfig(BaseModel):
    """Settings of the attendant console."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where the web app listens (HTTPS when tls.mode is tls or mtls; the certificate and
    # key are tls.cert_file and tls.key_file). Port 0: any free port (printed on start).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # The lanes shown, per store. A signed-in attendant sees only the stores of the token.
    lanes: list[ConsoleLane] = []
    # How long a session lasts after sign-in, and after the last request.
    session_max_age_s: float = Field(default=12 * 3600.0, gt=0, le=7 * 86400.0)
    session_idle_s: float = Field(default=2 * 3600.0, gt=0, le=7 * 86400.0)
    # How often lane state (fusion) and device health (lane agents) are refreshed.
    poll_interval_s: float = Field(default=1.0, ge=0.1, le=60.0)
    # Live updates kept for browsers that reconnect (Last-Event-ID); an older cursor gets a
    # fresh snapshot instead.
    replay_buffer: int = Field(default=2000, ge=10, le=1_000_000)
    # Deadline of each call to fusion or a lane agent.
    rpc_timeout_s: float = Field(default=5.0, gt=0, le=60.0)
    # The Secure flag on cookies; None: set it when the console serves HTTPS.
    secure_cookies: bool | None = None

    @field_validator("lanes")
    @classmethod
    def _lanes_are_unique(cls, lanes: list[ConsoleLane]) -> list[ConsoleLane]:
        seen: set[tuple[str, str]] = set()
        for index, lane in enumerate(lanes):
            key = (lane.store_id, lane.lane_id)
            if key in seen:
                raise ValueError(f"entry {index}: {lane.store_id}/{lane.lane_id} is listed twice")
            seen.add(key)
        return lanes
