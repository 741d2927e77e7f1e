"""Public graded tests of module 19 (Benchmarking).

Oracles are computed here: medians with np.median, interval ranks from the binomial
distribution (math.comb), timings from the known readings of a scripted clock passed to the
student's code, Pareto frontiers by a brute-force dominance check over rng-generated points,
and SVG parsed with xml.etree.
"""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_exact

pytestmark = pytest.mark.module("19_benchmarking")

# A clock that returns the readings of a list, one per call (defined in the student's kernel).
FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"
SVG = "{http://www.w3.org/2000/svg}"
OBJECTIVES = [("accuracy", "max"), ("latency", "min"), ("memory", "min")]


def ci_rank(n, confidence):
    """The largest k >= 1 whose interval [x(k), x(n+1-k)] covers the median with probability
    >= confidence (coverage 1 - 2 P(B <= k-1), B ~ Binomial(n, 1/2)); 1 if none does."""
    best = 1
    for k in range(1, n // 2 + 1):
        if 2 * sum(math.comb(n, i) for i in range(k)) / 2**n <= 1 - confidence:
            best = k
    return best


def oracle_ci(samples, confidence=0.95):
    x = sorted(samples)
    k = ci_rank(len(x), confidence)
    return float(np.median(x)), x[k - 1], x[len(x) - k]


def increasing(rng, count, low=0.001, high=2.0):
    start = float(rng.uniform(0, 100))
    return [float(t) for t in start + np.cumsum(rng.uniform(low, high, size=count))]


def brute_frontier(points, objectives=OBJECTIVES):
    """Indices of the points that no other point dominates, by checking every pair."""
    def at_least(q, p, key, sense):
        return q[key] >= p[key] if sense == "max" else q[key] <= p[key]

    def strictly(q, p, key, sense):
        return q[key] > p[key] if sense == "max" else q[key] < p[key]

    keep = []
    for i, p in enumerate(points):
        beaten = any(all(at_least(q, p, k, s) for k, s in objectives) and any(strictly(q, p, k, s) for k, s in objectives)
                     for j, q in enumerate(points) if j != i)
        if not beaten:
            keep.append(i)
    return keep


def grid_points(rng, count):
    """Candidates on a coarse grid (many ties), plus exact duplicates of some of them."""
    points = [{"name": f"m{i}", "accuracy": float(rng.integers(0, 4)) / 4, "latency": float(rng.integers(1, 5)),
               "memory": int(rng.integers(1, 4)) * 1000} for i in range(count)]
    for i in rng.choice(count, size=3, replace=False):
        points.append({**points[int(i)], "name": f"copy of m{int(i)}"})
    return points


@pytest.mark.points(2)
def test_median_ci_of_known_samples(student, rng):
    cases = [[float(v) for v in rng.exponential(0.01, size=n)] for n in (int(rng.integers(11, 25)), 40)]
    got = student.value("[median_ci(s) for s in cases]", cases=cases)
    for samples, result in zip(cases, got):
        assert type(result) is tuple and len(result) == 3 and all(type(v) is float for v in result), \
            f"median_ci returns a tuple of three floats, got {result!r}"
        assert result == oracle_ci(samples), \
            f"{len(samples)} samples at 95%: expected the median and x(k), x(n+1-k) with k={ci_rank(len(samples), 0.95)}: " \
            f"{oracle_ci(samples)}, got {result}"


@pytest.mark.points(1)
def test_median_ci_small_samples_and_bad_input(student, rng):
    samples = [float(v) for v in rng.uniform(1, 2, size=4)]
    got = student.value("median_ci(s)", s=samples)
    assert got == (float(np.median(samples)), min(samples), max(samples)), \
        f"4 samples cannot give 95%: expected (median, min, max), got {got}"
    for code in ("median_ci([])", "median_ci([1.0, 2.0], confidence=1.0)", "median_ci([1.0, 2.0], confidence=0)"):
        with pytest.raises(StudentError) as err:
            student.value(code)
        assert err.value.is_a("ValueError"), f"{code} must raise ValueError"


@pytest.mark.points(3)
def test_benchmark_with_a_scripted_clock(student, rng):
    warmup, repeats = int(rng.integers(1, 4)), int(rng.integers(9, 16))
    ts = increasing(rng, 2 * repeats)
    (median, low, high, samples, name, confidence), reads_seen = student.value(
        FAKE_CLOCK +
        "reads = [0]\n"
        "def counting_clock():\n"
        "    reads[0] += 1\n"
        "    return clock()\n"
        "seen = []\n"
        "r = benchmark(lambda: seen.append(reads[0]), warmup=w, repeats=n, clock=counting_clock, name='job')\n"
        "((r.median, r.ci_low, r.ci_high, r.samples, r.name, r.confidence), seen)",
        ts=ts, w=warmup, n=repeats,
    )
    expected = [ts[2 * i + 1] - ts[2 * i] for i in range(repeats)]
    assert reads_seen == [0] * warmup + [2 * i + 1 for i in range(repeats)], \
        f"fn must run {warmup} times before any clock read, then once between each start and stop read; " \
        f"clock reads seen by each call: {reads_seen}"
    assert_exact(samples, expected)
    assert (median, low, high) == oracle_ci(expected), f"expected {oracle_ci(expected)}, got {(median, low, high)}"
    assert name == "job" and confidence == 0.95


@pytest.mark.points(1)
def test_benchmark_rejects_bad_settings_before_calling(student):
    for settings in ("repeats=0", "warmup=-1"):
        with pytest.raises(StudentError) as err:
            student.value(f"calls = []\nbenchmark(lambda: calls.append(1), {settings})")
        assert err.value.is_a("ValueError"), f"benchmark(fn, {settings}) must raise ValueError"
    assert student.value("calls = []\ntry:\n    benchmark(lambda: calls.append(1), repeats=0)\nexcept ValueError:\n"
                         "    pass\nlen(calls)") == 0, "check the settings before calling fn"


@pytest.mark.points(2)
def test_compare_ratio_interval_and_verdicts(student, rng):
    b = sorted(float(v) for v in rng.uniform(1, 2, size=3))
    cases = {
        "faster": sorted(float(v) for v in rng.uniform(0.3, 0.9, size=3)),
        "slower": sorted(float(v) for v in rng.uniform(2.5, 4.0, size=3)),
        "same": [b[0] * 0.9, b[1] * 1.02, b[2] * 1.1],
    }
    got = student.value(
        "base = BenchmarkResult('base', b[1], b[0], b[2], [b[1]])\n"
        "[compare(base, BenchmarkResult(k, c[1], c[0], c[2], [c[1]])) for k, c in cases]",
        b=b, cases=list(cases.items()),
    )
    for (verdict, c), result in zip(cases.items(), got):
        expected = {"ratio": c[1] / b[1], "low": c[0] / b[2], "high": c[2] / b[0], "speedup": b[1] / c[1],
                    "verdict": verdict}
        assert type(result) is dict and set(result) == set(expected), f"compare returns a dict with keys {set(expected)}"
        for key, value in expected.items():
            assert type(result[key]) is type(value), f"{key} must be a {type(value).__name__}"
            assert result[key] == pytest.approx(value, rel=1e-12) if key != "verdict" else result[key] == value, \
                f"baseline {b}, candidate {c}: {key} should be {value}, got {result[key]}"


@pytest.mark.points(1)
def test_dominates_pairs(student, rng):
    acc, lat, mem = float(rng.uniform(0.5, 0.9)), float(rng.uniform(1, 2)), int(rng.integers(100, 200))
    a = {"accuracy": acc, "latency": lat, "memory": mem}
    pairs = [
        (a, {**a, "latency": lat + 0.5}),          # a is faster, equal otherwise: dominates
        ({**a, "latency": lat + 0.5}, a),          # the reverse: no
        (a, dict(a)),                             # equal: no, either way
        (a, {**a, "accuracy": acc + 0.05, "memory": mem + 1}),   # a trade-off: no
        ({**a, "accuracy": acc + 0.05}, a),        # more accurate, equal otherwise: yes
    ]
    got = student.value("[dominates(p, q) for p, q in pairs]", pairs=pairs)
    assert_exact(got, [True, False, False, False, True])


@pytest.mark.points(2)
def test_pareto_frontier_matches_brute_force(student, rng):
    points = grid_points(rng, int(rng.integers(12, 20)))
    continuous = [{"accuracy": float(a), "latency": float(l), "memory": float(m)}
                  for a, l, m in rng.uniform(0, 1, size=(30, 3))]
    got = student.value("(pareto_frontier(p), pareto_frontier(c))", p=points, c=continuous)
    assert_exact(got[0], brute_frontier(points))
    assert_exact(got[1], brute_frontier(continuous))


@pytest.mark.points(2)
def test_pareto_svg_is_well_formed(student, rng):
    points = grid_points(rng, 8)
    points[0]["name"] = "fp16 & <int8>"
    svg = student.value("pareto_svg(p)", p=points)
    assert type(svg) is str
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as err:
        raise AssertionError(f"pareto_svg must return well-formed XML: {err}") from None
    assert root.tag == SVG + "svg", f"the root element must be an svg element in the SVG namespace, got {root.tag}"
    circles = list(root.iter(SVG + "circle"))
    assert len(circles) == len(points), f"one circle per candidate: expected {len(points)}, got {len(circles)}"
    front = set(brute_frontier(points))
    assert [c.get("class") for c in circles] == ["frontier" if i in front else "dominated" for i in range(len(points))]
    assert [c.find(SVG + "title").text for c in circles] == [p["name"] for p in points]
    assert len(list(root.iter(SVG + "polyline"))) == 1, "the frontier is drawn as one polyline"
