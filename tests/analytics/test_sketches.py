"""The sketches against exact answers: HyperLogLog's distinct counts within a few times
its standard error, DDSketch's quantiles within its relative accuracy, and both merging
into exactly the sketch of the union."""

from __future__ import annotations

import math
import random

import pytest

from reelay.analytics.sketches import DDSketch, HyperLogLog


@pytest.mark.parametrize("n", [1, 10, 100, 1000, 10_000, 200_000])
def test_distinct_counts_are_within_a_few_standard_errors(n: int) -> None:
    hll = HyperLogLog(12)
    for i in range(n):
        hll.add(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        hll.add(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")  # a repeat counts once
    error = abs(hll.estimate() - n) / n
    assert error <= 4 * 1.04 / math.sqrt(4096), (n, hll.estimate())
    if n <= 100:  # small sets: linear counting, within a count or two
        assert abs(hll.estimate() - n) <= max(1, 0.02 * n)


def test_distinct_counts_merge_into_the_count_of_the_union() -> None:
    a, b, union = HyperLogLog(), HyperLogLog(), HyperLogLog()
    for i in range(30_000):
        (a if i % 3 else b).add(i)
        union.add(i)
    for i in range(10_000):  # overlapping values
        a.add(i)
        union.add(i)
    a.merge(b)
    assert a.registers == union.registers
    assert abs(a.estimate() - 30_000) / 30_000 < 0.05
    assert HyperLogLog.loads(a.dumps()).registers == a.registers
    with pytest.raises(ValueError, match="precision 12 and 10"):
        a.merge(HyperLogLog(10))
    with pytest.raises(ValueError, match="must be 4 to 16"):
        HyperLogLog(3)


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.mark.parametrize("accuracy", [0.01, 0.02])
def test_quantiles_are_within_the_relative_accuracy(accuracy: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(8, 2) for _ in range(20_000)]  # flow sizes: heavy-tailed
    sketch = DDSketch(accuracy)
    for v in values:
        sketch.add(v)
    for q in (0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1):
        exact = _exact(values, q)
        found = sketch.quantile(q)
        assert found is not None
        assert abs(found - exact) <= accuracy * exact * (1 + 1e-9), (q, found, exact)


def test_quantiles_of_negative_zero_and_positive_values() -> None:
    values = [-1000.0, -50.0, -50.0, 0.0, 0.0, 3.0, 7.5, 7.5, 7.5, 1e6]
    sketch = DDSketch(0.01)
    for v in values:
        sketch.add(v)
    sketch.add(math.nan)  # not a number: not counted
    assert sketch.count == len(values)
    for q in (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9, 1):
        exact = _exact(values, q)
        found = sketch.quantile(q)
        assert found is not None and abs(found - exact) <= 0.01 * abs(exact) + 1e-12, (q, found)
    assert DDSketch().quantile(0.5) is None
    with pytest.raises(ValueError, match="from 0 to 1"):
        sketch.quantile(1.5)


def test_quantile_sketches_merge_into_the_sketch_of_the_union() -> None:
    rng = random.Random(3)
    parts = [[rng.expovariate(1 / 5000) for _ in range(3000)] for _ in range(4)]
    merged, union = DDSketch(), DDSketch()
    for part in parts:
        piece = DDSketch()
        for v in part:
            piece.add(v)
            union.add(v)
        merged.merge(DDSketch.loads(piece.dumps()))  # through its stored form, as shards do
    everything = [v for part in parts for v in part]
    for q in (0.5, 0.9, 0.99):
        assert merged.quantile(q) == union.quantile(q)
        exact = _exact(everything, q)
        found = merged.quantile(q)
        assert found is not None and abs(found - exact) <= 0.01 * exact * (1 + 1e-9)


def test_a_sketch_over_its_bins_folds_the_lowest_and_keeps_the_high_quantiles() -> None:
    sketch = DDSketch(0.01, max_bins=64)
    values = [1.05**i for i in range(400)]  # spans far more bins than 64
    for v in values:
        sketch.add(v)
    assert len(sketch.positive) == 64
    for q in (0.9, 0.99, 1):
        exact = _exact(values, q)
        found = sketch.quantile(q)
        assert found is not None and abs(found - exact) <= 0.01 * exact * (1 + 1e-9)
    low = sketch.quantile(0.01)
    assert low is not None and low > _exact(values, 0.01)  # the folded end loses accuracy
