"""The exported benchmarking tools (tinytorch/perf/benchmarking.py) against oracles: medians
from np.median, interval ranks from the binomial distribution, a coverage simulation, timings
from a scripted clock, Pareto frontiers from a brute-force dominance check, SVG parsed by
xml.etree."""

import math
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tinytorch.perf.benchmarking import (
    OBJECTIVES,
    Benchmark,
    BenchmarkResult,
    benchmark,
    compare,
    dominates,
    format_table,
    median_ci,
    pareto_frontier,
    pareto_svg,
    save_svg,
)

SVG = "{http://www.w3.org/2000/svg}"


def ci_rank(n, confidence):
    best = 1
    for k in range(1, n // 2 + 1):
        if 2 * sum(math.comb(n, i) for i in range(k)) / 2**n <= 1 - confidence:
            best = k
    return best


def brute_frontier(points, objectives=OBJECTIVES):
    keep = []
    for i, p in enumerate(points):
        beaten = False
        for j, q in enumerate(points):
            if j != i:
                no_worse = all(q[k] >= p[k] if s == "max" else q[k] <= p[k] for k, s in objectives)
                better = any(q[k] > p[k] if s == "max" else q[k] < p[k] for k, s in objectives)
                beaten = beaten or (no_worse and better)
        if not beaten:
            keep.append(i)
    return keep


class Script:
    """A fake clock returning scripted readings, counting its reads."""

    def __init__(self, values):
        self.values, self.reads = list(values), 0

    def __call__(self):
        self.reads += 1
        return self.values[self.reads - 1]


@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 10, 11, 21, 31, 64, 101, 150])
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_median_ci_uses_the_binomial_ranks(n, confidence):
    samples = np.random.default_rng(n).exponential(1.0, size=n)
    x = np.sort(samples)
    k = ci_rank(n, confidence)
    assert median_ci(list(samples), confidence) == (float(np.median(samples)), float(x[k - 1]), float(x[n - k]))


def test_median_ci_known_values_and_errors():
    assert median_ci([5.0, 3.0, 9.0, 1.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0, 500.0]) == (6.0, 2.0, 10.0)
    assert median_ci([2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        median_ci([])
    for confidence in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError):
            median_ci([1.0, 2.0], confidence)


def test_median_ci_covers_the_true_median_as_often_as_promised():
    rng = np.random.default_rng(0)
    true_median = math.log(2.0)   # of an exponential(1) distribution
    hits = 0
    for _ in range(2000):
        _, low, high = median_ci(rng.exponential(1.0, size=25), 0.95)
        hits += low <= true_median <= high
    # the chosen k for n=25 has coverage 1 - 2 P(B <= 7) = 0.9567; 2000 trials: sd about 0.0045
    assert 0.94 < hits / 2000 < 0.975, hits / 2000


def test_benchmark_with_a_scripted_clock():
    clock = Script([0.0, 1.0, 1.0, 3.0, 3.0, 3.5, 10.0, 14.0, 20.0, 20.25, 30.0, 30.75])
    calls = []
    result = benchmark(lambda: calls.append(clock.reads), warmup=2, repeats=6, clock=clock, name="s")
    assert calls == [0, 0, 1, 3, 5, 7, 9, 11], "warm-up untimed, then one call between each pair of reads"
    assert result.samples == [1.0, 2.0, 0.5, 4.0, 0.25, 0.75]
    assert (result.median, result.ci_low, result.ci_high, result.n) == (0.875, 0.25, 4.0, 6)
    assert result.to_dict()["name"] == "s" and "0.8750 ms" not in repr(result)


def test_benchmark_defaults_and_errors():
    def work():
        return sum(range(100))

    result = benchmark(work, warmup=0, repeats=7)
    assert result.name == "work" and result.n == 7 and result.ci_low <= result.median <= result.ci_high
    for kwargs in ({"repeats": 0}, {"warmup": -1}):
        with pytest.raises(ValueError):
            benchmark(lambda: pytest.fail("fn must not run"), **kwargs)


def test_real_sleeps_are_ordered_and_compared():
    short = benchmark(lambda: time.sleep(0.001), warmup=1, repeats=9)
    long = benchmark(lambda: time.sleep(0.02), warmup=1, repeats=9)
    assert 0.00095 <= short.ci_low and 0.019 <= long.ci_low
    result = compare(short, long)
    assert result["verdict"] == "slower" and result["low"] > 1 and result["speedup"] < 1


def test_compare_exact_and_errors():
    base = BenchmarkResult("b", 2.0, 1.6, 2.5, [2.0])
    got = compare(base, BenchmarkResult("c", 1.0, 0.8, 1.25, [1.0]))
    assert got == {"ratio": 0.5, "low": 0.8 / 2.5, "high": 1.25 / 1.6, "speedup": 2.0, "verdict": "faster"}
    assert compare(base, base)["verdict"] == "same"
    assert compare(BenchmarkResult("c", 1.0, 0.8, 1.25, [1.0]), base)["verdict"] == "slower"
    with pytest.raises(ValueError):
        compare(BenchmarkResult("z", 0.0, 0.0, 0.0, [0.0]), base)


def test_dominates_and_frontier_against_brute_force():
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = int(rng.integers(1, 40))
        grid = trial % 2 == 0
        values = rng.integers(0, 3, size=(n, 3)) if grid else rng.uniform(0, 1, size=(n, 3))
        points = [{"accuracy": a, "latency": l, "memory": m} for a, l, m in values.tolist()]
        points += [dict(points[0])]
        assert pareto_frontier(points) == brute_frontier(points)
        for p in points[:5]:
            assert dominates(p, p) is False
    assert pareto_frontier([]) == []
    a = {"accuracy": 1, "latency": 1, "memory": 1}
    assert dominates(a, {**a, "memory": 2}) is True and dominates({**a, "memory": 2}, a) is False
    objectives = [("throughput", "max")]
    assert pareto_frontier([{"throughput": 1}, {"throughput": 3}, {"throughput": 3}], objectives) == [1, 2]


def test_svg_well_formed_escaped_and_placed(tmp_path):
    points = [{"name": "a & <b>", "accuracy": 0.5, "latency": 1.0, "memory": 1},
              {"name": "c", "accuracy": 1.0, "latency": 3.0, "memory": 1},
              {"name": "d", "accuracy": 0.25, "latency": 2.0, "memory": 1}]
    svg = pareto_svg(points, width=400, height=300, margin=40, title="t < u")
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg" and root.find(SVG + "title").text == "t < u"
    circles = list(root.iter(SVG + "circle"))
    got = [(float(c.get("cx")), float(c.get("cy"))) for c in circles]
    expected = [(40.0, 260 - (0.25 / 0.75) * 220), (360.0, 40.0), (200.0, 260.0)]
    assert np.allclose(got, expected, atol=0.006)
    assert [c.get("class") for c in circles] == ["frontier", "frontier", "dominated"]
    assert [c.find(SVG + "title").text for c in circles] == ["a & <b>", "c", "d"]
    (line,) = root.iter(SVG + "polyline")
    assert line.get("points") == f"40.00,{expected[0][1]:.2f} 360.00,40.00"
    path = save_svg(svg, tmp_path / "p.svg")
    assert ET.parse(path).getroot().tag == SVG + "svg"
    single = ET.fromstring(pareto_svg([points[0]]))   # one point: no division by zero, centred
    (circle,) = single.iter(SVG + "circle")
    assert (float(circle.get("cx")), float(circle.get("cy"))) == (240.0, 160.0)


def test_harness_object_and_table():
    clock = Script([float(i) * i for i in range(100)])
    harness = Benchmark(warmup=1, repeats=6, clock=clock)
    harness.run(lambda: None, name="first")
    harness.run(lambda: None, name="second")
    assert harness.compare("first", "second")["verdict"] == "slower"   # the clock's steps grow
    text = harness.table(baseline="first")
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["name", "median"] and len(lines) == 4
    assert "slower" in lines[3] and "same" in lines[2]
    assert format_table([{"a": "x", "b": 1.5}, {"a": "long", "b": 22}]) == "a       b\n----  ---\nx     1.5\nlong   22"
