"""Mergeable sketches: approximate distinct counts (HyperLogLog) and approximate
quantiles (DDSketch), small enough to keep one per window and group, and merged across
batches and shards without losing accuracy.

`HyperLogLog` (Flajolet et al., 2007) keeps 2^p one-byte registers; its standard error
is 1.04/sqrt(2^p) (1.6% at the default p = 12), and small counts, where most registers
are still empty, are counted by linear counting, which is close to exact. Two sketches
of the same precision merge by taking each register's maximum: the merge of A and B is
the sketch of A union B, exactly.

`DDSketch` (Masson, Rim and Lee, VLDB 2019) files each value into a bin whose bounds
grow geometrically (by gamma = (1 + a) / (1 - a)), so any quantile it answers is within
relative accuracy a of the exact one (1% by default) whatever the distribution. Bins merge by
adding counts: the merge of A and B is the sketch of A union B, exactly. When a sketch
holds more than ``max_bins`` bins of one sign, the bins nearest zero are folded
together, which costs accuracy only at the lowest quantiles.

Both serialise to small JSON-friendly values (`dumps`, `loads`).
"""

from __future__ import annotations

import base64
import hashlib
import math
import zlib
from typing import Any

__all__ = ["DDSketch", "HyperLogLog"]

DEFAULT_PRECISION = 12
DEFAULT_ACCURACY = 0.01
DEFAULT_MAX_BINS = 2048
_TINY = 1e-300  # below this a value is filed as zero (log would overflow)


class HyperLogLog:
    """An approximate distinct count of the values added (see the module's docstring)."""

    __slots__ = ("precision", "registers")

    def __init__(self, precision: int = DEFAULT_PRECISION, registers: bytes | None = None) -> None:
        if not isinstance(precision, int) or not 4 <= precision <= 16:
            raise ValueError(f"HyperLogLog precision {precision!r} must be 4 to 16")
        self.precision = precision
        size = 1 << precision
        if registers is not None and len(registers) != size:
            raise ValueError(f"{len(registers)} registers for precision {precision}, not {size}")
        self.registers = bytearray(registers) if registers is not None else bytearray(size)

    def add(self, value: object) -> None:
        """Count ``value`` (its text: 10 and "10" are one value)."""
        text = value if isinstance(value, str) else str(value)
        h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        p = self.precision
        index = h >> (64 - p)
        rest = h & ((1 << (64 - p)) - 1)
        rank = (64 - p) - rest.bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    def merge(self, other: HyperLogLog) -> None:
        """Fold ``other`` in: this becomes the sketch of both sets' union."""
        if other.precision != self.precision:
            raise ValueError(
                f"cannot merge HyperLogLogs of precision {self.precision} and {other.precision}"
            )
        mine = self.registers
        for i, r in enumerate(other.registers):
            if r > mine[i]:
                mine[i] = r

    def estimate(self) -> int:
        m = len(self.registers)
        alpha = 0.7213 / (1 + 1.079 / m) if m >= 128 else {16: 0.673, 32: 0.697, 64: 0.709}[m]
        total = math.fsum(2.0**-r for r in self.registers)
        raw = alpha * m * m / total
        zeros = self.registers.count(0)
        if raw <= 2.5 * m and zeros:
            return round(m * math.log(m / zeros))  # linear counting: small sets
        return round(raw)

    def dumps(self) -> str:
        packed = base64.b64encode(zlib.compress(bytes(self.registers), 6)).decode()
        return f"{self.precision}:{packed}"

    @classmethod
    def loads(cls, text: str) -> HyperLogLog:
        precision, _, packed = text.partition(":")
        return cls(int(precision), zlib.decompress(base64.b64decode(packed)))


class DDSketch:
    """Approximate quantiles of the numbers added (see the module's docstring)."""

    __slots__ = (
        "accuracy",
        "count",
        "gamma",
        "high",
        "log_gamma",
        "low",
        "max_bins",
        "negative",
        "positive",
        "zero",
    )

    def __init__(
        self, accuracy: float = DEFAULT_ACCURACY, *, max_bins: int = DEFAULT_MAX_BINS
    ) -> None:
        if not 0 < accuracy < 1:
            raise ValueError(f"DDSketch relative accuracy {accuracy!r} must be between 0 and 1")
        self.accuracy = accuracy
        self.gamma = (1 + accuracy) / (1 - accuracy)
        self.log_gamma = math.log(self.gamma)
        self.max_bins = max_bins
        self.positive: dict[int, int] = {}
        self.negative: dict[int, int] = {}  # bins of -x for negative x
        self.zero = 0
        self.count = 0
        self.low = math.inf  # the exact extremes: the ends of the range answered
        self.high = -math.inf

    def _key(self, magnitude: float) -> int:
        return math.ceil(math.log(magnitude) / self.log_gamma)

    def _value(self, key: int) -> float:
        # The bin's midpoint in relative terms: within the accuracy of both its bounds.
        return 2 * self.gamma**key / (self.gamma + 1)

    def add(self, value: float, count: int = 1) -> None:
        if not math.isfinite(value):
            return
        if value > _TINY:
            key = self._key(value)
            self.positive[key] = self.positive.get(key, 0) + count
            if len(self.positive) > self.max_bins:
                _collapse(self.positive, self.max_bins)
        elif value < -_TINY:
            key = self._key(-value)
            self.negative[key] = self.negative.get(key, 0) + count
            if len(self.negative) > self.max_bins:
                _collapse(self.negative, self.max_bins)
        else:
            self.zero += count
        self.count += count
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def merge(self, other: DDSketch) -> None:
        if other.gamma != self.gamma:
            raise ValueError(
                f"cannot merge DDSketches of accuracy {self.accuracy} and {other.accuracy}"
            )
        for mine, theirs in ((self.positive, other.positive), (self.negative, other.negative)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
            if len(mine) > self.max_bins:
                _collapse(mine, self.max_bins)
        self.zero += other.zero
        self.count += other.count
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0 to 1) within the relative accuracy, or None
        for an empty sketch. (The lower quantile: the value of rank floor(q (n - 1)).)"""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile {q!r} must be from 0 to 1")
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        found: float | None = None
        for key in sorted(self.negative, reverse=True):  # the most negative first
            seen += self.negative[key]
            if seen > rank:
                found = -self._value(key)
                break
        if found is None:
            seen += self.zero
            if seen > rank:
                found = 0.0
        if found is None:
            for key in sorted(self.positive):
                seen += self.positive[key]
                if seen > rank:
                    found = self._value(key)
                    break
        if found is None:  # pragma: no cover - the counts add up to count
            found = self.high
        return min(max(found, self.low), self.high)

    def dumps(self) -> dict[str, Any]:
        return {
            "a": self.accuracy,
            "b": self.max_bins,
            "n": self.count,
            "z": self.zero,
            "lo": self.low if self.count else None,
            "hi": self.high if self.count else None,
            "p": sorted(self.positive.items()),
            "m": sorted(self.negative.items()),
        }

    @classmethod
    def loads(cls, data: dict[str, Any]) -> DDSketch:
        sketch = cls(float(data["a"]), max_bins=int(data["b"]))
        sketch.positive = {int(k): int(n) for k, n in data["p"]}
        sketch.negative = {int(k): int(n) for k, n in data["m"]}
        sketch.zero = int(data["z"])
        sketch.count = int(data["n"])
        if sketch.count:
            sketch.low, sketch.high = float(data["lo"]), float(data["hi"])
        return sketch


def _collapse(bins: dict[int, int], limit: int) -> None:
    """Fold the bins nearest zero into one, so that ``limit`` remain."""
    keys = sorted(bins)
    extra = len(keys) - limit
    into = keys[extra]
    bins[into] += sum(bins.pop(k) for k in keys[:extra])
