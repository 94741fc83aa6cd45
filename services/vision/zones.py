"""Lane zones as polygons in normalised image coordinates, and which zone a point is in."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class Zone(enum.Enum):
    """An area of the lane the camera watches."""

    CART = "cart"
    SCAN = "scan"
    BAGGING = "bagging"


class ZoneError(ValueError):
    """A zone polygon is invalid; ``field`` names the offending item, e.g. ``zones[1].points``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class ZonePolygon:
    """One zone's polygon; corners are (x, y) in 0..1 from the top left."""

    zone: Zone
    points: tuple[tuple[float, float], ...]

    def contains(self, x: float, y: float) -> bool:
        """True when (x, y) is inside the polygon (even-odd rule)."""
        inside = False
        points = self.points
        j = len(points) - 1
        for i in range(len(points)):
            xi, yi = points[i]
            xj, yj = points[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


class ZoneMap:
    """The zones of one camera; a point belongs to the first polygon that contains it."""

    def __init__(self, polygons: Iterable[ZonePolygon]) -> None:
        self.polygons = tuple(polygons)

    @classmethod
    def from_points(cls, zones: Sequence[tuple[Zone, Sequence[tuple[float, float]]]]) -> ZoneMap:
        """Validate polygons (at least 3 corners, all in 0..1) and build the map."""
        polygons = []
        for index, (zone, points) in enumerate(zones):
            if len(points) < 3:
                raise ZoneError(
                    f"zones[{index}].points", f"needs at least 3 points, got {len(points)}"
                )
            for point_index, (x, y) in enumerate(points):
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ZoneError(
                        f"zones[{index}].points[{point_index}]",
                        f"({x:g}, {y:g}) is outside 0..1",
                    )
            polygons.append(ZonePolygon(zone, tuple((float(x), float(y)) for x, y in points)))
        return cls(polygons)

    @property
    def zones(self) -> tuple[Zone, ...]:
        """Each zone once, in the order first configured."""
        return tuple(dict.fromkeys(polygon.zone for polygon in self.polygons))

    def zone_at(self, x: float, y: float) -> Zone | None:
        """The zone containing the normalised point, or None."""
        for polygon in self.polygons:
            if polygon.contains(x, y):
                return polygon.zone
        return None
