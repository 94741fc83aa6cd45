"""A set of simulated lane devices and the agent configuration that connects to them."""

from __future__ import annotations

from dataclasses import dataclass, field

from lanesight.device.config import PeripheralConfig
from lanesight.simulation.devices.devices import SimulatedPrinter, SimulatedScale, SimulatedScanner
from lanesight.simulation.devices.endpoints import make_endpoint

#: Serial settings each simulated scale protocol uses (7-bit ones need socket://).
SCALE_LINE = {"8217": (7, "E"), "nci": (7, "E"), "magellan": (8, "N")}


@dataclass(frozen=True)
class ScaleSpec:
    """One simulated scale: id, protocol, role, transport."""

    device_id: str
    protocol: str = "8217"
    role: str = "bagging"
    transport: str = "socket"

    @classmethod
    def parse(cls, text: str, index: int = 0) -> ScaleSpec:
        """PROTOCOL[:TRANSPORT[:ROLE[:ID]]], for example "8217:socket:bagging"."""
        parts = text.split(":")
        protocol = parts[0]
        transport = parts[1] if len(parts) > 1 and parts[1] else "socket"
        role = parts[2] if len(parts) > 2 and parts[2] else ("bagging" if index == 0 else "produce")
        device_id = parts[3] if len(parts) > 3 and parts[3] else f"scale-{role}"
        return cls(device_id, protocol, role, transport)


@dataclass
class LaneSimulators:
    """Simulated scanner, scales and printer for one lane.

    Start them, hand ``peripherals()`` to the agent's config, then drive them::

        sims = await LaneSimulators.start(scanner="pty", scales=[ScaleSpec("bag")])
        await sims.scanner.scan("]E00012345678905")
        sims.scales["bag"].set_weight(1_250_000, stable=True)
        sims.printer.set_paper("out")
        await sims.stop()
    """

    scanner: SimulatedScanner | None = None
    scales: dict[str, SimulatedScale] = field(default_factory=dict)
    printer: SimulatedPrinter | None = None
    scanner_id: str = "scanner-1"
    printer_id: str = "printer-1"
    drawer_id: str = "drawer-1"
    _specs: dict[str, ScaleSpec] = field(default_factory=dict)
    scanner_framing: str = "cr"

    @classmethod
    async def start(
        cls,
        scanner: str | None = "pty",
        scanner_framing: str = "cr",
        scales: list[ScaleSpec] | None = None,
        printer: str | None = "socket",
        drawer_open_level: str = "high",
    ) -> LaneSimulators:
        """Start the simulators; a transport of None leaves that device out."""
        sims = cls(scanner_framing=scanner_framing)
        try:
            if scanner:
                sims.scanner = SimulatedScanner(make_endpoint(scanner), scanner_framing)
                await sims.scanner.start()
            for spec in scales or []:
                bytesize, parity = SCALE_LINE[spec.protocol]
                scale = SimulatedScale(
                    make_endpoint(spec.transport, bytesize, parity), spec.protocol
                )
                await scale.start()
                sims.scales[spec.device_id] = scale
                sims._specs[spec.device_id] = spec
            if printer:
                sims.printer = SimulatedPrinter(make_endpoint(printer), drawer_open_level)
                await sims.printer.start()
        except BaseException:
            await sims.stop()
            raise
        return sims

    def scale(self, device_id: str) -> SimulatedScale:
        """A simulated scale by id."""
        return self.scales[device_id]

    def peripherals(
        self, poll_interval_s: float = 0.05, response_timeout_s: float = 0.5
    ) -> list[PeripheralConfig]:
        """The [[device.peripherals]] entries that connect an agent to these simulators."""
        out: list[PeripheralConfig] = []
        if self.scanner is not None:
            out.append(
                # model_validate: the framing is a str here; the model checks the Literal.
                PeripheralConfig.model_validate(
                    {
                        "id": self.scanner_id,
                        "kind": "scanner",
                        "protocol": self.scanner_framing if self.scanner_framing != "lf" else "cr",
                        "url": self.scanner.url,
                    }
                )
            )
        for device_id, scale in self.scales.items():
            spec = self._specs[device_id]
            bytesize, parity = SCALE_LINE[spec.protocol]
            out.append(
                PeripheralConfig.model_validate(
                    {
                        "id": device_id,
                        "kind": "scanner_scale" if spec.protocol == "magellan" else "scale",
                        "role": spec.role,
                        "protocol": spec.protocol,
                        "url": scale.url,
                        "bytesize": bytesize,
                        "parity": parity,
                        "poll_interval_s": poll_interval_s,
                        "response_timeout_s": response_timeout_s,
                    }
                )
            )
        if self.printer is not None:
            out.append(
                PeripheralConfig(
                    id=self.printer_id,
                    kind="printer",
                    protocol="escpos",
                    url=self.printer.url,
                    drawer_id=self.drawer_id,
                    poll_interval_s=max(poll_interval_s, 0.2),
                    response_timeout_s=response_timeout_s,
                )
            )
        return out

    def urls(self) -> dict[str, str]:
        """Device id -> the URL its driver connects to."""
        return {p.id: p.url for p in self.peripherals()}

    async def stop(self) -> None:
        """Stop every simulator; idempotent."""
        devices = [self.scanner, *self.scales.values(), self.printer]
        for device in devices:
            if device is not None:
                await device.stop()


def peripherals_toml(peripherals: list[PeripheralConfig]) -> str:
    """The [[device.peripherals]] tables for a config file."""
    blocks = []
    for peripheral in peripherals:
        lines = ["[[device.peripherals]]"]
        for key, value in peripheral.model_dump().items():
            default = PeripheralConfig.model_fields[key].default
            if value == default and key not in ("id", "kind", "protocol", "url"):
                continue
            if isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            else:
                lines.append(f"{key} = {value}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
