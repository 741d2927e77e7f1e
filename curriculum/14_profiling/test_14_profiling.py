"""Public graded tests of module 14 (Profiling).

Oracles are computed here: FLOPs and parameter counts from layer shapes, statistics with
np.percentile, timings from the known readings of a fake clock passed to the student's code.
Real-time measurements (a sleep, an allocation) use generous tolerances: grading machines are
shared.
"""

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_exact

pytestmark = pytest.mark.module("14_profiling")

# A clock that returns the readings of a list, one per call (defined in the student's kernel).
FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"


def increasing(rng, count, low=0.001, high=2.0):
    """`count` increasing clock readings as Python floats, with random gaps."""
    start = float(rng.uniform(0, 100))
    return [float(t) for t in start + np.cumsum(rng.uniform(low, high, size=count))]


def linear_flops(rows, fan_in, fan_out, bias=True):
    return 2 * rows * fan_in * fan_out + (rows * fan_out if bias else 0)


@pytest.mark.points(2)
def test_time_profiler_nests_with_a_fake_clock(student, rng):
    ts = increasing(rng, 8)
    elapsed, depths, children, records, printed = student.value(
        "import contextlib, io\n"
        "TimeProfiler._active.clear()\n" + FAKE_CLOCK +
        "log, out = [], io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    with TimeProfiler('outer', clock=clock, records=log) as a:\n"
        "        with TimeProfiler('first', clock=clock, records=log) as b:\n"
        "            pass\n"
        "        with TimeProfiler('second', clock=clock, records=log) as c:\n"
        "            with TimeProfiler('deep', clock=clock, records=log) as d:\n"
        "                pass\n"
        "ps = [a, b, c, d]\n"
        "([p.elapsed for p in ps], [p.depth for p in ps],\n"
        " [[q.name for q in p.children] for p in ps], log, out.getvalue())",
        ts=ts,
    )
    expected = [ts[7] - ts[0], ts[2] - ts[1], ts[6] - ts[3], ts[5] - ts[4]]
    assert_exact(elapsed, expected)
    assert_exact(depths, [0, 1, 1, 2])
    assert_exact(children, [["first", "second"], [], ["deep"], []])
    assert_exact(records, [("first", expected[1]), ("deep", expected[3]), ("second", expected[2]), ("outer", expected[0])])
    lines = [f"  first: {expected[1] * 1e3:.3f} ms", f"    deep: {expected[3] * 1e3:.3f} ms",
             f"  second: {expected[2] * 1e3:.3f} ms", f"outer: {expected[0] * 1e3:.3f} ms"]
    assert printed.splitlines() == lines, f"expected the lines {lines}, printed {printed!r}"


@pytest.mark.points(1)
def test_time_profiler_times_real_sleeps(student):
    short, long, returned_self = student.value(
        "import time\n"
        "TimeProfiler._active.clear()\n"
        "with TimeProfiler('short', verbose=False) as s:\n"
        "    time.sleep(0.01)\n"
        "with TimeProfiler('long', verbose=False) as l:\n"
        "    time.sleep(0.06)\n"
        "t = TimeProfiler('x', verbose=False)\n"
        "with t as same:\n"
        "    pass\n"
        "(s.elapsed, l.elapsed, same is t)"
    )
    assert type(short) is float and type(long) is float
    assert 0.0095 <= short < 1.0 and 0.059 <= long < 2.0, (short, long)
    assert long > short, "a 60 ms sleep must measure longer than a 10 ms one"
    assert returned_self is True, "__enter__ returns the profiler (with ... as t)"


@pytest.mark.points(2)
def test_get_memory_usage_is_the_resident_set_in_mb(student):
    got, reference, grown, linux = student.value(
        "import sys, os, resource\n"
        "def reference_mb():\n"
        "    if os.path.exists('/proc/self/status'):\n"
        "        for line in open('/proc/self/status'):\n"
        "            if line.startswith('VmRSS:'):\n"
        "                return int(line.split()[1]) / 1024\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    return peak / 2**20 if sys.platform == 'darwin' else peak / 1024\n"
        "got, ref = get_memory_usage(), reference_mb()\n"
        "before = get_memory_usage()\n"
        "block = np.ones(64 * 2**20 // 8)\n"
        "grown = get_memory_usage() - before\n"
        "del block\n"
        "(got, ref, grown, sys.platform.startswith('linux'))"
    )
    assert type(got) is float, f"get_memory_usage() must return a float (MB), got {type(got).__name__}"
    assert abs(got - reference) < 8, f"get_memory_usage() = {got:.1f} MB, the process's RSS is {reference:.1f} MB"
    if linux:
        assert 48 < grown < 100, f"allocating and filling 64 MB changed get_memory_usage() by {grown:.1f} MB"


@pytest.mark.points(2)
def test_peak_memory_of_known_arrays(student, rng):
    n = int(rng.integers(100_000, 400_000))
    kept, temporary, nothing, tracing_after = student.value(
        "import tracemalloc\n"
        "(peak_memory(lambda: np.ones(n)), peak_memory(lambda: float(np.ones(n).sum())),\n"
        " peak_memory(lambda: None), tracemalloc.is_tracing())",
        n=n,
    )
    nbytes = n * 8
    assert type(kept) is int and type(temporary) is int, "peak_memory returns an int (bytes)"
    assert nbytes <= kept < nbytes + 64 * 1024, f"np.ones({n}) allocates {nbytes} bytes, peak_memory said {kept}"
    assert nbytes <= temporary < nbytes + 64 * 1024, "an array freed before fn returns still counts in the peak"
    assert 0 <= nothing < 64 * 1024, f"a function that allocates nothing: {nothing} bytes"
    assert tracing_after is False, "peak_memory must stop tracemalloc when it started it"


@pytest.mark.points(2)
def test_summarize_matches_numpy_percentiles(student, rng):
    samples = [float(v) for v in rng.exponential(0.01, size=int(rng.integers(5, 30)))]
    got = student.value("summarize(samples)", samples=samples)
    assert type(got) is dict and set(got) == {"n", "min", "p25", "median", "p75", "max", "mean"}, got
    assert_exact(got["n"], len(samples))
    p25, median, p75 = np.percentile(samples, [25, 50, 75])
    expected = {"min": min(samples), "p25": p25, "median": median, "p75": p75, "max": max(samples),
                "mean": float(np.mean(samples))}
    for key, value in expected.items():
        assert type(got[key]) is float, f"{key} must be a float"
        assert got[key] == pytest.approx(value, rel=1e-12), f"{key}: expected {value}, got {got[key]}"


@pytest.mark.points(2)
def test_measure_latency_uses_warmup_and_the_clock(student, rng):
    warmup, repeats = int(rng.integers(1, 4)), int(rng.integers(3, 8))
    ts = increasing(rng, 2 * repeats)
    result, reads_seen = student.value(
        FAKE_CLOCK +
        "reads = [0]\n"
        "def counting_clock():\n"
        "    reads[0] += 1\n"
        "    return clock()\n"
        "seen = []\n"
        "result = measure_latency(lambda: seen.append(reads[0]), warmup=w, repeats=r, clock=counting_clock)\n"
        "(result, seen)",
        ts=ts, w=warmup, r=repeats,
    )
    samples = [ts[2 * i + 1] - ts[2 * i] for i in range(repeats)]
    assert reads_seen == [0] * warmup + [2 * i + 1 for i in range(repeats)], \
        f"fn must run {warmup} times before any clock read, then once between each start and stop read; " \
        f"clock reads seen by each call: {reads_seen}"
    assert_exact(result["samples"], samples)
    assert result["median"] == pytest.approx(float(np.median(samples)), rel=1e-12)
    assert result["n"] == repeats and result["min"] == min(samples) and result["max"] == max(samples)


@pytest.mark.points(2)
def test_parameter_and_flop_counts_from_shapes(student, rng):
    rows, fan_in, fan_out = (int(v) for v in rng.integers(1, 50, size=3))
    params, params_no_bias, relu_params, flops, flops_no_bias, relu_flops = student.value(
        "(count_parameters(Linear(i, o)), count_parameters(Linear(i, o, bias=False)), count_parameters(ReLU()),\n"
        " layer_flops(Linear(i, o), (b, i)), layer_flops(Linear(i, o, bias=False), (b, i)),\n"
        " layer_flops(ReLU(), (b, o)))",
        i=fan_in, o=fan_out, b=rows,
    )
    assert_exact(params, fan_in * fan_out + fan_out)
    assert_exact(params_no_bias, fan_in * fan_out)
    assert_exact(relu_params, 0)
    assert_exact(flops, linear_flops(rows, fan_in, fan_out))
    assert_exact(flops_no_bias, linear_flops(rows, fan_in, fan_out, bias=False))
    assert_exact(relu_flops, rows * fan_out)


@pytest.mark.points(1)
def test_named_layers_of_a_nested_model(student):
    names, types = student.value(
        "act = ReLU()\n"
        "model = Sequential(Linear(4, 8), act, Sequential(Linear(8, 8), Dropout(0.1)), act, Linear(8, 2), Softmax())\n"
        "layers = named_layers(model)\n"
        "([n for n, _ in layers], [type(l).__name__ for _, l in layers])"
    )
    assert_exact(names, ["0", "1", "2.0", "2.1", "4", "5"])
    assert_exact(types, ["Linear", "ReLU", "Linear", "Dropout", "Linear", "Softmax"])


@pytest.mark.points(2)
def test_profiler_profiles_an_mlp_layer_by_layer(student, rng):
    batch, d0, d1, d2 = (int(v) for v in rng.integers(2, 20, size=4))
    x = rng.standard_normal((batch, d0)).astype(np.float32)
    result = student.value(
        "reads = [0]\n"
        "def clock():\n"
        "    reads[0] += 1\n"
        "    return float(reads[0])\n"
        "model = Sequential(Linear(d0, d1), ReLU(), Linear(d1, d2, bias=False))\n"
        "out = Profiler(warmup=1, repeats=3, clock=clock).profile(model, Tensor(x))\n"
        "out['reads'] = reads[0]\n"
        "out",
        x=x, d0=d0, d1=d1, d2=d2,
    )
    layers = result["layers"]
    assert [row["name"] for row in layers] == ["0", "1", "2"]
    assert [row["type"] for row in layers] == ["Linear", "ReLU", "Linear"]
    assert_exact([row["params"] for row in layers], [d0 * d1 + d1, 0, d1 * d2])
    flops = [linear_flops(batch, d0, d1), batch * d1, linear_flops(batch, d1, d2, bias=False)]
    assert_exact([row["flops"] for row in layers], flops)
    assert_exact([row["input_shape"] for row in layers], [(batch, d0), (batch, d1), (batch, d1)])
    assert_exact([row["output_shape"] for row in layers], [(batch, d1), (batch, d1), (batch, d2)])
    assert_exact([row["seconds"] for row in layers], [1.0, 1.0, 1.0])
    assert_exact(result["params"], d0 * d1 + d1 + d1 * d2)
    assert_exact(result["flops"], sum(flops))
    assert result["latency"]["samples"] == [1.0, 1.0, 1.0]
    assert result["reads"] == 3 * 3 * 2 + 3 * 2, "3 traced passes of 3 layers, then 3 timed runs, 2 reads each"
    assert type(result["peak_bytes"]) is int and result["peak_bytes"] >= batch * d1 * 4
