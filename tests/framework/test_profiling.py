"""The exported profiler (tinytorch/perf/profiling.py) against oracles: FLOPs and parameter
counts from shapes, statistics from np.percentile, timings from a fake clock's readings, peaks
from known array sizes. Real-time checks assert orderings with generous tolerances."""

import contextlib
import io
import math
import time
import tracemalloc

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.perf.profiling import (
    Profiler,
    TimeProfiler,
    count_parameters,
    get_memory_usage,
    layer_flops,
    measure_latency,
    named_layers,
    peak_memory,
    summarize,
    trace_forward,
)


class Readings:
    """A fake clock returning the given readings, one per call, and counting its calls."""

    def __init__(self, values):
        self.values, self.reads = list(values), 0

    def __call__(self):
        self.reads += 1
        return self.values[self.reads - 1]


class Counting:
    def __init__(self):
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return float(self.reads)


@pytest.fixture(autouse=True)
def empty_stack():
    TimeProfiler._active.clear()
    yield
    assert TimeProfiler._active == []


def test_time_profiler_nested_exact_and_printed():
    clock = Readings([1.0, 1.25, 2.0, 3.5])
    log, out = [], io.StringIO()
    with contextlib.redirect_stdout(out):
        with TimeProfiler("epoch", clock=clock, records=log) as outer:
            with TimeProfiler("step", clock=clock, records=log) as inner:
                pass
    assert (outer.elapsed, inner.elapsed) == (2.5, 0.75)
    assert (outer.depth, inner.depth, outer.children, inner.children) == (0, 1, [inner], [])
    assert log == [("step", 0.75), ("epoch", 2.5)]
    assert out.getvalue() == "  step: 750.000 ms\nepoch: 2500.000 ms\n"
    assert "2500.000 ms" in repr(outer)


def test_time_profiler_propagates_exceptions_and_cleans_up():
    with pytest.raises(RuntimeError):
        with TimeProfiler("a", verbose=False) as a:
            with TimeProfiler("b", verbose=False):
                raise RuntimeError("boom")
    assert a.elapsed is not None and a.elapsed >= 0


def test_time_profiler_real_sleeps_are_ordered():
    times = []
    for delay in (0.005, 0.03):
        with TimeProfiler("sleep", verbose=False) as t:
            time.sleep(delay)
        times.append(t.elapsed)
    assert 0.0045 < times[0] < times[1] < 1.0


def _vmrss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="Linux /proc only")
def test_get_memory_usage_is_rss_in_mb_and_sees_allocations():
    assert abs(get_memory_usage() - _vmrss_mb()) < 8
    before = get_memory_usage()
    block = np.ones(64 * 2**20 // 8)
    grown = get_memory_usage() - before
    del block
    assert 48 < grown < 100


def test_peak_memory_of_known_arrays():
    n, m = 200_000, 150_000
    assert n * 8 <= peak_memory(lambda: np.ones(n)) < n * 8 + 65536
    assert n * 8 <= peak_memory(lambda: np.ones(n).sum()) < n * 8 + 65536

    def sequential():
        a = np.ones(n)
        del a
        b = np.ones(m)
        del b

    assert n * 8 <= peak_memory(sequential) < n * 8 + 65536
    assert (n + m) * 8 <= peak_memory(lambda: (np.ones(n), np.ones(m))) < (n + m) * 8 + 65536
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        assert peak_memory(lambda: np.ones(n)) >= n * 8 and tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_peak_memory_stops_tracing_when_fn_raises():
    with pytest.raises(ZeroDivisionError):
        peak_memory(lambda: 1 / 0)
    assert not tracemalloc.is_tracing()


def test_summarize_matches_numpy():
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 30):
        samples = rng.exponential(size=size).tolist()
        stats = summarize(samples)
        p25, median, p75 = np.percentile(samples, [25, 50, 75])
        assert stats == pytest.approx({"n": size, "min": min(samples), "p25": p25, "median": median,
                                       "p75": p75, "max": max(samples), "mean": np.mean(samples)}, rel=1e-12)
        assert type(stats["n"]) is int and all(type(stats[k]) is float for k in stats if k != "n")
    with pytest.raises(ValueError):
        summarize([])


def test_measure_latency_with_a_fake_clock():
    clock = Readings([0.0, 1.0, 2.0, 4.0, 10.0, 10.5, 11.0, 14.0])
    seen = []
    result = measure_latency(lambda: seen.append(clock.reads), warmup=2, repeats=4, clock=clock)
    assert seen == [0, 0, 1, 3, 5, 7], "warm-up runs never read the clock; each timed run sits between two reads"
    assert result["samples"] == [1.0, 2.0, 0.5, 3.0]
    assert result["median"] == 1.5 and result["p25"] == pytest.approx(0.875) and result["n"] == 4
    with pytest.raises(ValueError):
        measure_latency(lambda: None, repeats=0)
    with pytest.raises(ValueError):
        measure_latency(lambda: None, warmup=-1)


def test_measure_latency_real_sleep_ordering():
    result = measure_latency(lambda: time.sleep(0.002), warmup=1, repeats=5)
    assert 0.0019 < result["min"] <= result["p25"] <= result["median"] <= result["p75"] <= result["max"] < 1.0


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 5), (5,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_flops_from_shapes(shape, bias):
    layer = Linear(5, 11, bias=bias)
    rows = math.prod(shape[:-1])
    assert layer_flops(layer, shape) == 2 * rows * 5 * 11 + (rows * 11 if bias else 0)
    assert type(layer_flops(layer, shape)) is int


def test_elementwise_dropout_custom_and_unknown_flops():
    for act in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax()):
        assert layer_flops(act, (3, 4, 5)) == 60
    assert layer_flops(Dropout(0.3), (6, 7)) == 42
    assert layer_flops(Dropout(0.3).eval(), (6, 7)) == 0 and layer_flops(Dropout(0.0), (6, 7)) == 0

    class Costed(Module):
        def flops(self, shape):
            return 3 * shape[-1]

    assert layer_flops(Costed(), (2, 9)) == 27
    with pytest.raises(TypeError, match="Module"):
        layer_flops(Module(), (2, 2))


def test_flops_do_not_overflow_at_scale():
    big = Linear(8, 8)
    big.in_features = big.out_features = 2**20  # pretend: counting needs only the sizes
    assert layer_flops(big, (2**22, 2**20)) == 2 * 2**22 * 2**40 + 2**22 * 2**20


def test_count_parameters_counts_tied_weights_once():
    shared = Linear(4, 4)
    model = Sequential(Linear(3, 4), ReLU(), shared, shared, Linear(4, 2, bias=False))
    assert count_parameters(model) == (3 * 4 + 4) + (16 + 4) + 8
    assert count_parameters(ReLU()) == 0 and count_parameters(lambda t: t) == 0


def test_named_layers_walks_sequentials_and_modules():
    class Encoder(Module):
        def __init__(self):
            super().__init__()
            self.embed = Linear(3, 4)
            self.blocks = Sequential(Linear(4, 4), Tanh(), Sequential(Linear(4, 4), GELU()))

    class Model(Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.head = Linear(4, 2)
            self.alias = self.head

    names = [n for n, _ in named_layers(Model())]
    assert names == ["encoder.embed", "encoder.blocks.0", "encoder.blocks.1", "encoder.blocks.2.0",
                     "encoder.blocks.2.1", "head"]
    act = ReLU()
    assert [n for n, _ in named_layers(Sequential(Linear(2, 2), act, act, lambda t: t))] == ["0", "1", "3"]
    leaf = Linear(2, 2)
    assert named_layers(leaf) == [("", leaf)]


def test_trace_forward_records_calls_and_restores_forward():
    act = ReLU()
    model = Sequential(Linear(4, 3), act, Linear(3, 3), act, lambda t: t)
    x = Tensor(np.ones((2, 4)))
    expected = model(x).data
    out, calls = trace_forward(model, x, clock=Counting())
    np.testing.assert_array_equal(out.data, expected)
    assert [c["name"] for c in calls] == ["0", "1", "2", "1"], "a shared layer gives one call per use"
    assert [c["input_shape"] for c in calls] == [(2, 4), (2, 3), (2, 3), (2, 3)]
    assert all(c["seconds"] == 1.0 for c in calls)
    assert all("forward" not in vars(layer) for layer in model.layers if hasattr(layer, "forward"))
    np.testing.assert_array_equal(model(x).data, expected)


def test_trace_forward_restores_forward_when_a_layer_raises():
    model = Sequential(Linear(4, 3), ReLU(), Linear(2, 2))
    with pytest.raises(ValueError):
        trace_forward(model, Tensor(np.ones((1, 4))))
    assert all("forward" not in vars(layer) for layer in model.layers)


def test_profiler_exact_with_an_uneven_fake_clock():
    rng = np.random.default_rng(3)
    repeats, layers = 3, 3
    readings = np.cumsum(rng.uniform(0.01, 1.0, size=2 * layers * repeats + 2 * repeats)).tolist()
    model = Sequential(Linear(5, 7), Sigmoid(), Linear(7, 2))
    result = Profiler(warmup=2, repeats=repeats, clock=Readings(readings)).profile(model, Tensor(np.ones((4, 5))))
    for j, row in enumerate(result["layers"]):
        durations = [readings[2 * (k * layers + j) + 1] - readings[2 * (k * layers + j)] for k in range(repeats)]
        assert row["seconds"] == pytest.approx(np.median(durations), rel=1e-12)
    base = 2 * layers * repeats
    assert result["latency"]["samples"] == [readings[base + 2 * k + 1] - readings[base + 2 * k] for k in range(repeats)]
    assert [r["flops"] for r in result["layers"]] == [2 * 4 * 5 * 7 + 4 * 7, 4 * 7, 2 * 4 * 7 * 2 + 4 * 2]
    assert [r["params"] for r in result["layers"]] == [42, 0, 16]
    assert result["params"] == 58 and result["flops"] == sum(r["flops"] for r in result["layers"])
    assert result["peak_bytes"] >= 4 * 7 * 4


def test_profiler_marks_unknown_layers_and_finds_the_slow_one():
    class Slow(Module):
        def forward(self, x):
            time.sleep(0.02)
            return x

    model = Sequential(Linear(4, 4), Slow(), ReLU())
    result = Profiler(warmup=1, repeats=3).profile(model, Tensor(np.ones((2, 4))))
    rows = result["layers"]
    assert [r["flops"] for r in rows] == [2 * 2 * 16 + 8, None, 8] and result["flops"] == 72 + 8
    assert rows[1]["seconds"] >= 0.019 and rows[1]["seconds"] > max(rows[0]["seconds"], rows[2]["seconds"])
    assert result["latency"]["median"] >= 0.019


def test_report_is_a_readable_table():
    model = Sequential(Linear(8, 16), ReLU(), Linear(16, 4))
    text = Profiler(warmup=1, repeats=3).report(model, Tensor(np.ones((10, 8))))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "type", "output"]
    assert any(line.startswith("0") and "Linear" in line and "(10, 16)" in line for line in lines)
    assert f"parameters {8 * 16 + 16 + 16 * 4 + 4:,}" in text and "latency median" in text and "p75" in text


def test_profiler_rejects_bad_settings():
    with pytest.raises(ValueError):
        Profiler(repeats=0)
