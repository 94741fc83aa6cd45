"""Simulated lane devices speaking the real protocols over a pty or a socket:// server.

Python API for tests, the demo and the fusion simulator's scenarios::

    from lanesight.simulation.devices import LaneSimulators, ScaleSpec

    sims = await LaneSimulators.start(scanner="pty", scales=[ScaleSpec("scale-bagging")])
    sims.peripherals()            # PeripheralConfig entries for the agent
    await sims.scanner.scan("]E00012345678905")
    sims.scale("scale-bagging").set_weight(1_250_000, stable=True)
    sims.printer.set_paper("out")
"""

from lanesight.simulation.devices.devices import SimulatedPrinter, SimulatedScale, SimulatedScanner
from lanesight.simulation.devices.endpoints import PtyEndpoint, SocketEndpoint, make_endpoint
from lanesight.simulation.devices.lane import LaneSimulators, ScaleSpec, peripherals_toml

__all__ = [
    "LaneSimulators",
    "PtyEndpoint",
    "ScaleSpec",
    "SimulatedPrinter",
    "SimulatedScale",
    "SimulatedScanner",
    "SocketEndpoint",
    "make_endpoint",
    "peripherals_toml",
]
