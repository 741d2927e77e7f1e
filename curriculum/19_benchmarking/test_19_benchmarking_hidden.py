"""Hidden graded tests of module 19 (Benchmarking): samples, clock readings, candidates and
confidences drawn at grading time; oracles computed here (np.median, binomial ranks with
math.comb, brute-force dominance, the SVG pixel mapping recomputed and parsed with xml.etree)."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_exact

pytestmark = [pytest.mark.module("19_benchmarking"), pytest.mark.hidden]

FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"
SVG = "{http://www.w3.org/2000/svg}"
OBJECTIVES = [("accuracy", "max"), ("latency", "min"), ("memory", "min")]


def ci_rank(n, confidence):
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
    keep = []
    for i, p in enumerate(points):
        beaten = False
        for j, q in enumerate(points):
            if j == i:
                continue
            no_worse = all(q[k] >= p[k] if s == "max" else q[k] <= p[k] for k, s in objectives)
            better = any(q[k] > p[k] if s == "max" else q[k] < p[k] for k, s in objectives)
            beaten = beaten or (no_worse and better)
        if not beaten:
            keep.append(i)
    return keep


@pytest.mark.points(2)
def test_median_ci_matches_binomial_ranks(student, rng):
    cases = []
    for n in [int(v) for v in rng.integers(1, 90, size=6)] + [int(rng.integers(6, 40)) * 2]:
        confidence = float(rng.choice([0.8, 0.9, 0.95, 0.99]))
        cases.append(([float(v) for v in rng.lognormal(-6, 1, size=n)], confidence))
    got = student.value("[median_ci(s, confidence=c) for s, c in cases]", cases=cases)
    for (samples, confidence), result in zip(cases, got):
        expected = oracle_ci(samples, confidence)
        assert type(result) is tuple and all(type(v) is float for v in result), f"a tuple of three floats, got {result!r}"
        assert result == expected, \
            f"{len(samples)} samples at {confidence}: expected {expected}, got {result}"


@pytest.mark.points(1)
def test_median_ci_ignores_outliers_and_keeps_its_input(student, rng):
    n = int(rng.integers(15, 40))
    samples = rng.uniform(1.0, 2.0, size=n)
    spiky = samples.copy()
    spiky[int(rng.integers(n))] = 1e6
    plain, with_outlier, unchanged = student.value(
        "before = spiky.copy()\nr = (median_ci(list(samples)), median_ci(spiky))\n(*r, bool((spiky == before).all()))",
        samples=samples, spiky=spiky,
    )
    assert with_outlier == oracle_ci(list(spiky)) and plain == oracle_ci(list(samples))
    assert with_outlier[2] < 1e6, "with n >= 9 at 95% the interval never reaches the largest sample"
    assert unchanged is True, "median_ci must not sort its input in place"


@pytest.mark.points(2)
def test_benchmark_uses_warmup_clock_confidence_and_name(student, rng):
    warmup, repeats = int(rng.integers(0, 5)), int(rng.integers(1, 30))
    confidence = float(rng.choice([0.8, 0.9, 0.99]))
    ts = increasing(rng, 2 * repeats)
    result, calls = student.value(
        FAKE_CLOCK +
        "calls = [0]\n"
        "def workload():\n"
        "    calls[0] += 1\n"
        "r = benchmark(workload, warmup=w, repeats=n, clock=clock, confidence=conf)\n"
        "(r.to_dict(), calls[0])",
        ts=ts, w=warmup, n=repeats, conf=confidence,
    )
    expected = [ts[2 * i + 1] - ts[2 * i] for i in range(repeats)]
    assert calls == warmup + repeats, f"{warmup} warm-up and {repeats} timed calls, got {calls}"
    assert_exact(result["samples"], expected)
    assert (result["median"], result["ci_low"], result["ci_high"]) == oracle_ci(expected, confidence)
    assert result["confidence"] == confidence and result["name"] == "workload", \
        "the confidence is passed on, and the name defaults to fn.__name__"


@pytest.mark.points(2)
def test_compare_with_random_results(student, rng):
    results = []
    for _ in range(8):
        low, median, high = sorted(float(v) for v in rng.uniform(0.5, 3.0, size=3))
        results.append([low, median, high])
    pairs = [(results[i], results[i + 1]) for i in range(0, 8, 2)]
    got = student.value(
        "def make(v):\n"
        "    return BenchmarkResult('r', v[1], v[0], v[2], [v[1]])\n"
        "[compare(make(b), make(c)) for b, c in pairs]",
        pairs=pairs,
    )
    for (b, c), result in zip(pairs, got):
        low, high = c[0] / b[2], c[2] / b[0]
        verdict = "faster" if high < 1 else "slower" if low > 1 else "same"
        assert result["verdict"] == verdict, f"baseline {b}, candidate {c}: interval [{low}, {high}] -> {verdict}"
        assert result["ratio"] == pytest.approx(c[1] / b[1], rel=1e-12)
        assert result["low"] == pytest.approx(low, rel=1e-12) and result["high"] == pytest.approx(high, rel=1e-12)
        assert result["speedup"] == pytest.approx(b[1] / c[1], rel=1e-12)
    with pytest.raises(StudentError) as err:
        student.value("compare(BenchmarkResult('z', 0.0, 0.0, 1.0, [0.0]), BenchmarkResult('a', 1.0, 1.0, 1.0, [1.0]))")
    assert err.value.is_a("ValueError"), "a baseline whose interval starts at 0 cannot give a ratio"


@pytest.mark.points(2)
def test_pareto_frontier_with_duplicates_and_ties(student, rng):
    count = int(rng.integers(20, 40))
    points = [{"name": f"m{i}", "accuracy": int(rng.integers(0, 3)), "latency": int(rng.integers(0, 3)),
               "memory": int(rng.integers(0, 3))} for i in range(count)]
    best = max(range(count), key=lambda i: (points[i]["accuracy"], -points[i]["latency"], -points[i]["memory"]))
    points.insert(int(rng.integers(0, count)), dict(points[best]))   # a duplicate of a frontier point
    got = student.value("pareto_frontier(p)", p=points)
    assert_exact(got, brute_frontier(points))


@pytest.mark.points(1)
def test_pareto_frontier_with_other_objectives(student, rng):
    objectives = [("throughput", "max"), ("energy", "min")]
    points = [{"throughput": float(t), "energy": float(e)} for t, e in rng.uniform(0, 1, size=(25, 2))]
    points += [dict(points[0]), dict(points[3])]
    got, single = student.value(
        "(pareto_frontier(p, objectives=o), pareto_frontier(p, objectives=[('energy', 'min')]))",
        p=points, o=objectives,
    )
    assert_exact(got, brute_frontier(points, objectives))
    assert_exact(single, brute_frontier(points, [("energy", "min")]))


@pytest.mark.points(2)
def test_pareto_svg_coordinates_and_escaping(student, rng):
    n = int(rng.integers(5, 10))
    points = [{"name": f"q{i} <{i}> & \"x\"", "latency": float(l), "accuracy": float(a), "memory": 1}
              for i, (l, a) in enumerate(rng.uniform(0, 1, size=(n, 2)))]
    frontier = sorted(int(i) for i in rng.choice(n, size=3, replace=False))
    width, height, margin = int(rng.integers(300, 700)), int(rng.integers(200, 500)), int(rng.integers(20, 60))
    svg = student.value("pareto_svg(p, frontier=f, width=w, height=h, margin=m, title='A & B')",
                        p=points, f=frontier, w=width, h=height, m=margin)
    root = ET.fromstring(svg)
    assert root.get("width") == str(width) and root.get("height") == str(height)
    assert root.find(SVG + "title").text == "A & B"
    xs, ys = [p["latency"] for p in points], [p["accuracy"] for p in points]

    def pixel(i):
        px = margin + (xs[i] - min(xs)) / (max(xs) - min(xs)) * (width - 2 * margin)
        py = (height - margin) + (ys[i] - min(ys)) / (max(ys) - min(ys)) * (2 * margin - height)
        return px, py

    circles = list(root.iter(SVG + "circle"))
    assert len(circles) == n
    for i, circle in enumerate(circles):
        px, py = pixel(i)
        got = float(circle.get("cx")), float(circle.get("cy"))
        assert abs(got[0] - px) <= 0.006 and abs(got[1] - py) <= 0.006, \
            f"candidate {i} ({xs[i]:.3f}, {ys[i]:.3f}) belongs at pixel ({px:.2f}, {py:.2f}), drawn at {got}"
        assert circle.get("class") == ("frontier" if i in frontier else "dominated"), "use the frontier given"
        assert circle.find(SVG + "title").text == points[i]["name"]
    (line,) = list(root.iter(SVG + "polyline"))
    drawn = [tuple(float(v) for v in pair.split(",")) for pair in line.get("points").split()]
    order = sorted(frontier, key=lambda i: (xs[i], ys[i]))
    assert len(drawn) == len(order)
    for (dx, dy), i in zip(drawn, order):
        px, py = pixel(i)
        assert abs(dx - px) <= 0.006 and abs(dy - py) <= 0.006, "the polyline joins the frontier sorted by x"


@pytest.mark.points(1)
def test_benchmark_harness_object(student, rng):
    ts = increasing(rng, 2 * 2 * 11)
    got = student.value(
        FAKE_CLOCK +
        "h = Benchmark(warmup=1, repeats=11, clock=clock)\n"
        "h.run(lambda: None, name='a')\nh.run(lambda: None, name='b')\n"
        "(h.compare('a', 'b'), h.results['a'].samples, h.results['b'].samples)",
        ts=ts,
    )
    samples = [ts[2 * i + 1] - ts[2 * i] for i in range(22)]
    a, b = oracle_ci(samples[:11]), oracle_ci(samples[11:])
    assert_exact(got[1], samples[:11])
    assert got[0]["ratio"] == pytest.approx(b[0] / a[0], rel=1e-12)
    assert got[0]["low"] == pytest.approx(b[1] / a[2], rel=1e-12) and got[0]["high"] == pytest.approx(b[2] / a[1], rel=1e-12)
