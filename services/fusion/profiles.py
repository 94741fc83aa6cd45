"""Per-SKU weight profiles learned from clean transactions (Welford), and their SQLite store.

Two kinds per SKU: the clean profile (weights that fitted the catalog, from transactions
without alerts) and the measured one (weights of the scanned item that did not fit the
catalog, the same way in several transactions). When the measured one is settled, the
catalog's weight is what is wrong, and the measured range is used instead of it.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# A settled measured range is kept beside the clean profiles, under this prefix of the SKU
# (rows of the same table; earlier versions' "measured:" rows are read the same way).
MEASURED_PREFIX = "measured:"
# Weights off the catalog agree when within this share of their median, or this many
# milligrams for small packs (a bagging scale reads to a few grams); the range used is at
# least this share either side of their mean.
_MEASURED_AGREE = 0.06
_MEASURED_AGREE_FLOOR_MG = 5_000
_MEASURED_MIN_SPREAD = 0.03
# Agreeing weights of this many transactions settle a range when the camera confirmed one
# of them; this many when it confirmed none.
_MEASURED_LEAST = 3
_MEASURED_LEAST_UNCONFIRMED = 4
# The latest weights off the catalog kept per SKU (in memory) to find agreeing ones among.
_MEASURED_KEPT = 16


def _agreeing(samples) -> list[tuple[int, bool, str]]:
    """The largest group of samples within _MEASURED_AGREE of one of them."""
    ordered = sorted(samples)
    best: list[tuple[int, bool, str]] = []
    for centre, _, _ in ordered:
        near = max(_MEASURED_AGREE * centre, _MEASURED_AGREE_FLOOR_MG)
        group = [s for s in ordered if abs(s[0] - centre) <= near]
        if len(group) > len(best):
            best = group
    return best


@dataclass(slots=True)
class WeightProfile:
    """Running mean and variance of one unit's bagged weight, in milligrams."""

    sku: str
    count: int = 0
    mean_mg: float = 0.0
    m2: float = 0.0
    discarded: int = 0

    @property
    def std_mg(self) -> float:
        """The sample standard deviation (0 with fewer than two samples)."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def add(self, weight_mg: float) -> None:
        """Welford's update with one accepted sample."""
        self.count += 1
        delta = weight_mg - self.mean_mg
        self.mean_mg += delta / self.count
        self.m2 += delta * (weight_mg - self.mean_mg)


class WeightProfiles:
    """The learned profiles: outliers are discarded once a profile has enough samples."""

    def __init__(
        self,
        min_samples: int = 5,
        outlier_sigma: float = 4.0,
        outlier_floor_mg: int = 20_000,
        range_sigma: float = 3.0,
    ) -> None:
        self.min_samples = min_samples
        self.outlier_sigma = outlier_sigma
        self.outlier_floor_mg = outlier_floor_mg
        self.range_sigma = range_sigma
        self.profiles: dict[str, WeightProfile] = {}
        self.dirty: set[str] = set()
        # Per SKU, the latest weights off the catalog: (weight, confirmed, transaction).
        self._samples: dict[str, deque[tuple[int, bool, str]]] = {}

    def observe(self, sku: str, weight_mg: float) -> bool:
        """Add one clean sample; returns False when it was discarded as an outlier."""
        return self._observe(sku, weight_mg)

    def observe_measured(
        self, sku: str, weight_mg: float, confirmed: bool, source: str = ""
    ) -> bool:
        """Add one unit's weight that did not fit the catalog: ``confirmed`` when the camera
        surely saw it was this SKU. ``source`` names the transaction: one transaction gives
        one weight per SKU (one shopper's goods are one sample, however many units).

        Returns True when the weights measured so far settle a range this weight is in:
        the catalog's weight is what is wrong (see measured_range)."""
        if weight_mg <= 0:
            return False
        samples = self._samples.get(sku)
        if samples is None:
            samples = self._samples[sku] = deque(maxlen=_MEASURED_KEPT)
        if source and any(sample[2] == source for sample in samples):
            return self._fits_measured(sku, weight_mg)
        samples.append((int(weight_mg), confirmed, source))
        group = _agreeing(samples)
        if len(group) >= _MEASURED_LEAST and (
            len(group) >= _MEASURED_LEAST_UNCONFIRMED or any(c for _, c, _ in group)
        ):
            profile = WeightProfile(MEASURED_PREFIX + sku)
            for weight, _, _ in group:
                profile.add(weight)
            before = self.measured_range(sku)
            self.profiles[profile.sku] = profile
            self.dirty.add(profile.sku)
            after = self.measured_range(sku)
            if before is None and after is not None:
                # A fact about the store's data, for whoever keeps the catalog.
                log.info(
                    "catalog weight of %s looks wrong: units weigh %d-%d g here; using that",
                    sku,
                    after[0] // 1000,
                    after[1] // 1000,
                )
        return self._fits_measured(sku, weight_mg)

    def _fits_measured(self, sku: str, weight_mg: float) -> bool:
        measured = self.measured_range(sku)
        return measured is not None and measured[0] <= weight_mg <= measured[1]

    def measured_range(self, sku: str) -> tuple[int, int] | None:
        """The (min, max) one unit weighs as measured, once enough weights off the catalog
        agree: the catalog's weight for it is wrong. Enough is three transactions' weights
        within 6 % (5 g for small packs) of one of them, one of them a unit the camera surely saw was this SKU,
        or four without the camera (a wrong catalog weight is off the same way for every
        shopper; losses are rare, and their weights scatter over what was really taken)."""
        profile = self.profiles.get(MEASURED_PREFIX + sku)
        if profile is None or profile.count < _MEASURED_LEAST:
            return None
        spread = max(
            self.range_sigma * profile.std_mg,
            _MEASURED_MIN_SPREAD * profile.mean_mg,
            _MEASURED_AGREE_FLOOR_MG,
        )
        return (max(0, int(profile.mean_mg - spread)), int(profile.mean_mg + spread))

    def _observe(self, key: str, weight_mg: float) -> bool:
        if weight_mg <= 0:
            return False
        profile = self.profiles.get(key)
        if profile is None:
            profile = self.profiles[key] = WeightProfile(key)
        if profile.count >= self.min_samples:
            bound = max(self.outlier_sigma * profile.std_mg, self.outlier_floor_mg)
            if abs(weight_mg - profile.mean_mg) > bound:
                profile.discarded += 1
                self.dirty.add(key)
                return False
        profile.add(weight_mg)
        self.dirty.add(key)
        return True

    def expected_range(self, sku: str) -> tuple[int, int] | None:
        """The (min, max) one unit should weigh, once the profile has enough samples."""
        profile = self.profiles.get(sku)
        if profile is None or profile.count < self.min_samples:
            return None
        spread = self.range_sigma * profile.std_mg
        return (max(0, int(profile.mean_mg - spread)), int(profile.mean_mg + spread))

    def take_dirty(self) -> list[WeightProfile]:
        """Copies of the profiles changed since the last call, for persisting."""
        changed = [
            WeightProfile(p.sku, p.count, p.mean_mg, p.m2, p.discarded)
            for sku in sorted(self.dirty)
            if (p := self.profiles.get(sku)) is not None
        ]
        self.dirty.clear()
        return changed

    def load(self, profiles: list[WeightProfile]) -> None:
        """Replace in-memory profiles with persisted ones."""
        for profile in profiles:
            self.profiles[profile.sku] = profile


class FusionStore:
    """SQLite persistence of weight profiles and tuned rule thresholds.

    Methods are blocking; the service calls them through ``asyncio.to_thread``. One
    connection is shared under a lock so calls from different worker threads are safe.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS weight_profiles (
                sku TEXT PRIMARY KEY, count INTEGER NOT NULL, mean_mg REAL NOT NULL,
                m2 REAL NOT NULL, discarded INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS rule_thresholds (
                store_id TEXT NOT NULL, rule TEXT NOT NULL, threshold REAL NOT NULL,
                PRIMARY KEY (store_id, rule));
            """
        )
        self._db.commit()

    def load_profiles(self) -> list[WeightProfile]:
        """Every persisted profile."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sku, count, mean_mg, m2, discarded FROM weight_profiles"
            ).fetchall()
        return [WeightProfile(*row) for row in rows]

    def save_profiles(self, profiles: list[WeightProfile]) -> None:
        """Insert or replace profiles in one transaction."""
        if not profiles:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO weight_profiles VALUES (?, ?, ?, ?, ?)",
                [(p.sku, p.count, p.mean_mg, p.m2, p.discarded) for p in profiles],
            )

    def load_thresholds(self) -> dict[tuple[str, str], float]:
        """Tuned thresholds by (store_id, rule)."""
        with self._lock:
            rows = self._db.execute("SELECT store_id, rule, threshold FROM rule_thresholds")
            return {(store, rule): value for store, rule, value in rows.fetchall()}

    def save_thresholds(self, thresholds: dict[tuple[str, str], float]) -> None:
        """Insert or replace tuned thresholds."""
        if not thresholds:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO rule_thresholds VALUES (?, ?, ?)",
                [(store, rule, value) for (store, rule), value in thresholds.items()],
            )

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            self._db.close()
