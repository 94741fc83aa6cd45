"""Lane-time helpers: epoch milliseconds to the configured zone's day and hour, and back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

# Every zone offset in use is a multiple of 15 minutes, so one lookup serves a quarter hour.
_BUCKET_MS = 15 * 60 * 1000
_CACHE_LIMIT = 100_000


class LocalTime:
    """Converts lane time (epoch ms, UTC) to local calendar day and hour of day."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.zone = ZoneInfo(timezone)
        self._cache: dict[int, tuple[str, int]] = {}
        self._offsets: dict[int, int] = {}

    def day_hour(self, time_ms: int) -> tuple[str, int]:
        """The local day ("YYYY-MM-DD") and hour (0..23) of an instant."""
        bucket = time_ms // _BUCKET_MS
        hit = self._cache.get(bucket)
        if hit is None:
            local = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, self.zone)
            hit = (local.date().isoformat(), local.hour)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[bucket] = hit
        return hit

    def hour_start_ms(self, time_ms: int) -> int:
        """The first instant of the local hour holding ``time_ms``."""
        bucket = time_ms // _BUCKET_MS
        offset = self._offsets.get(bucket)
        if offset is None:
            local = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, self.zone)
            delta = local.utcoffset()
            offset = int(delta.total_seconds() * 1000) if delta is not None else 0
            if len(self._offsets) >= _CACHE_LIMIT:
                self._offsets.clear()
            self._offsets[bucket] = offset
        return time_ms - (time_ms + offset) % 3_600_000

    def day(self, time_ms: int) -> str:
        """The local day of an instant."""
        return self.day_hour(time_ms)[0]

    def day_start_ms(self, day: str) -> int:
        """The first instant of a local day."""
        start = datetime.combine(date.fromisoformat(day), datetime.min.time(), self.zone)
        return int(start.timestamp() * 1000)

    def next_day(self, day: str) -> str:
        """The local day after ``day``."""
        return (date.fromisoformat(day) + timedelta(days=1)).isoformat()

    def naive_to_ms(self, value: datetime) -> int:
        """Epoch ms of a timestamp; one without an offset is read in the configured zone."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return int(value.timestamp() * 1000)


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(datetime.now(UTC).timestamp() * 1000)


class StoreZones:
    """Each store's local time: its own zone where configured, else the default zone."""

    def __init__(self, default: str = "UTC", per_store: dict[str, str] | None = None) -> None:
        self.default = LocalTime(default)
        self._zones = {store: LocalTime(zone) for store, zone in (per_store or {}).items()}

    def of(self, store_id: str) -> LocalTime:
        """The local time of a store."""
        return self._zones.get(store_id, self.default)

    def hour_bucket(self, store_id: str, time_ms: int) -> int:
        """The first instant (epoch ms) of the store's local hour holding ``time_ms``.

        Zone offsets are whole quarter hours, so a local hour is always one real hour long.
        """
        return self.of(store_id).hour_start_ms(time_ms)
