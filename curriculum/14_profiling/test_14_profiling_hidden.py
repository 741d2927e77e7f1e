"""Hidden graded tests of module 14 (Profiling): shapes, samples and clock readings drawn at
grading time; oracles computed here from shapes, np.percentile and the fake clock's readings."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_exact

pytestmark = [pytest.mark.module("14_profiling"), pytest.mark.hidden]

FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"


def increasing(rng, count, low=0.001, high=2.0):
    start = float(rng.uniform(0, 100))
    return [float(t) for t in start + np.cumsum(rng.uniform(low, high, size=count))]


def linear_flops(rows, fan_in, fan_out, bias=True):
    return 2 * rows * fan_in * fan_out + (rows * fan_out if bias else 0)


@pytest.mark.points(2)
def test_time_profiler_survives_an_exception(student, rng):
    ts = increasing(rng, 6)
    name = f"block{int(rng.integers(1000))}"
    raised, elapsed, stack_after, records, inner_elapsed, exit_value = student.value(
        "TimeProfiler._active.clear()\n" + FAKE_CLOCK +
        "log = []\n"
        "try:\n"
        "    with TimeProfiler(name, clock=clock, verbose=False, records=log) as outer:\n"
        "        with TimeProfiler('inner', clock=clock, verbose=False) as inner:\n"
        "            raise ZeroDivisionError('in the block')\n"
        "    raised = False\n"
        "except ZeroDivisionError:\n"
        "    raised = True\n"
        "stack_after = len(TimeProfiler._active)\n"
        "p = TimeProfiler('direct', clock=clock, verbose=False)\n"
        "p.__enter__()\n"
        "exit_value = p.__exit__(ValueError, ValueError('x'), None)\n"
        "(raised, outer.elapsed, stack_after, log, inner.elapsed, exit_value)",
        ts=ts, name=name,
    )
    assert raised is True, "an exception inside the block must propagate (__exit__ returns False)"
    assert exit_value is False
    assert_exact(elapsed, ts[3] - ts[0])
    assert_exact(inner_elapsed, ts[2] - ts[1])
    assert stack_after == 0, "profilers left by an exception must leave the stack"
    assert_exact(records, [(name, ts[3] - ts[0])])


@pytest.mark.points(1)
def test_time_profiler_orders_real_work(student, rng):
    delays = sorted(float(d) for d in rng.uniform(0.005, 0.04, size=3))
    delays = [delays[0], delays[1] + 0.02, delays[2] + 0.04]
    got = student.value(
        "import time\n"
        "TimeProfiler._active.clear()\n"
        "out = []\n"
        "for d in delays:\n"
        "    with TimeProfiler(f'sleep {d}', verbose=False) as t:\n"
        "        time.sleep(d)\n"
        "    out.append(t.elapsed)\n"
        "out",
        delays=delays,
    )
    assert all(type(v) is float for v in got)
    assert all(g >= d * 0.95 for g, d in zip(got, delays)), f"sleeps of {delays} s measured {got}"
    assert got[0] < got[2] and got[2] < delays[2] + 1.0, f"sleeps of {delays} s measured {got}"


@pytest.mark.points(1)
def test_get_memory_usage_follows_allocations(student, rng):
    sizes_mb = [int(v) for v in rng.integers(40, 70, size=2)]
    readings, linux = student.value(
        "import sys\n"
        "readings, blocks = [get_memory_usage()], []\n"
        "for mb in sizes:\n"
        "    blocks.append(np.full(mb * 2**20 // 8, 1.5))\n"
        "    readings.append(get_memory_usage())\n"
        "del blocks\n"
        "readings.append(get_memory_usage())\n"
        "(readings, sys.platform.startswith('linux'))",
        sizes=sizes_mb,
    )
    assert all(type(r) is float for r in readings) and readings[0] > 5, readings
    if linux:
        for step, mb in enumerate(sizes_mb):
            grown = readings[step + 1] - readings[step]
            assert 0.75 * mb < grown < 1.5 * mb + 8, f"filling {mb} MB grew the reading by {grown:.1f} MB ({readings})"
        assert readings[-1] < readings[-2] - 0.5 * sum(sizes_mb), f"freeing the blocks must show ({readings})"


@pytest.mark.points(2)
def test_peak_memory_is_a_peak_not_a_sum(student, rng):
    n, m = (int(v) for v in rng.integers(100_000, 300_000, size=2))
    sequential, together, tracing_kept, outer_current_ok = student.value(
        "import tracemalloc\n"
        "def one_after_another():\n"
        "    a = np.ones(n)\n"
        "    del a\n"
        "    b = np.ones(m)\n"
        "    del b\n"
        "def both_alive():\n"
        "    a, b = np.ones(n), np.ones(m)\n"
        "    return a, b\n"
        "tracemalloc.start()\n"
        "keep = np.ones(1000)\n"
        "r = (peak_memory(one_after_another), peak_memory(both_alive), tracemalloc.is_tracing())\n"
        "current = tracemalloc.get_traced_memory()[0]\n"
        "tracemalloc.stop()\n"
        "(*r, current >= 8000)",
        n=n, m=m,
    )
    slack = 64 * 1024
    assert type(sequential) is int and type(together) is int
    assert max(n, m) * 8 <= sequential < max(n, m) * 8 + slack, \
        f"arrays of {n * 8} and {m * 8} bytes alive one after the other: peak_memory said {sequential}"
    assert (n + m) * 8 <= together < (n + m) * 8 + slack, \
        f"arrays of {n * 8} and {m * 8} bytes alive together: peak_memory said {together}"
    assert tracing_kept is True and outer_current_ok is True, "tracing started by the caller must stay on"


@pytest.mark.points(1)
def test_summarize_odd_sizes_and_empty(student, rng):
    one = float(rng.uniform(0.1, 1.0))
    samples = [float(v) for v in rng.lognormal(-5, 1, size=int(rng.integers(2, 12)))]
    single, many = student.value("(summarize([one]), summarize(s))", one=one, s=samples)
    assert single["n"] == 1 and all(single[k] == one for k in ("min", "p25", "median", "p75", "max", "mean"))
    for key, q in (("p25", 25), ("median", 50), ("p75", 75)):
        assert many[key] == pytest.approx(float(np.percentile(samples, q)), rel=1e-12), key
    with pytest.raises(StudentError) as err:
        student.value("summarize([])")
    assert err.value.is_a("ValueError"), "summarize([]) must raise ValueError"


@pytest.mark.points(2)
def test_measure_latency_exact_with_a_fake_clock(student, rng):
    warmup, repeats = int(rng.integers(0, 5)), int(rng.integers(1, 12))
    ts = increasing(rng, 2 * repeats)
    result, calls = student.value(
        FAKE_CLOCK + "calls = []\n"
        "(measure_latency(lambda: calls.append(1), warmup=w, repeats=r, clock=clock), len(calls))",
        ts=ts, w=warmup, r=repeats,
    )
    samples = [ts[2 * i + 1] - ts[2 * i] for i in range(repeats)]
    assert calls == warmup + repeats
    assert_exact(result["samples"], samples)
    p25, median, p75 = np.percentile(samples, [25, 50, 75])
    for key, value in (("p25", p25), ("median", median), ("p75", p75), ("mean", np.mean(samples))):
        assert result[key] == pytest.approx(float(value), rel=1e-12), key
    with pytest.raises(StudentError) as err:
        student.value("measure_latency(lambda: None, repeats=0)")
    assert err.value.is_a("ValueError"), "repeats=0 must raise ValueError"


@pytest.mark.points(2)
def test_layer_flops_for_every_kind_of_layer(student, rng):
    a, b, fan_in, fan_out = (int(v) for v in rng.integers(1, 30, size=4))
    p = float(rng.uniform(0.1, 0.9))
    got = student.value(
        "class Custom(Module):\n"
        "    def flops(self, shape):\n"
        "        return 7 * shape[0]\n"
        "(layer_flops(Linear(i, o), (a, b, i)), layer_flops(Linear(i, o, bias=False), [a, i]),\n"
        " [layer_flops(act, (a, b, o)) for act in (Sigmoid(), Tanh(), GELU(), Softmax(), ReLU())],\n"
        " layer_flops(Dropout(p), (a, o)), layer_flops(Dropout(p).eval(), (a, o)), layer_flops(Dropout(0.0), (a, o)),\n"
        " layer_flops(Custom(), (a, i)))",
        a=a, b=b, i=fan_in, o=fan_out, p=p,
    )
    linear, no_bias, acts, drop_train, drop_eval, drop_zero, custom = got
    assert_exact(linear, linear_flops(a * b, fan_in, fan_out))
    assert_exact(no_bias, linear_flops(a, fan_in, fan_out, bias=False))
    assert_exact(acts, [a * b * fan_out] * 5)
    assert_exact((drop_train, drop_eval, drop_zero), (a * fan_out, 0, 0))
    assert_exact(custom, 7 * a)
    with pytest.raises(StudentError) as err:
        student.value("layer_flops(Module(), (3, 4))")
    assert err.value.is_a("TypeError"), "an unknown layer must raise TypeError"


@pytest.mark.points(1)
def test_parameters_of_a_model_with_tied_weights(student, rng):
    fan_in, hidden = (int(v) for v in rng.integers(2, 30, size=2))
    count = student.value(
        "first, last = Linear(i, h), Linear(h, i)\n"
        "tied = Linear(h, h)\n"
        "model = Sequential(first, ReLU(), tied, tied, last)\n"
        "count_parameters(model)",
        i=fan_in, h=hidden,
    )
    assert_exact(count, (fan_in * hidden + hidden) + (hidden * hidden + hidden) + (hidden * fan_in + fan_in))


@pytest.mark.points(1)
def test_named_layers_of_custom_modules(student):
    names, leaf_root = student.value(
        "class Encoder(Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.embed = Linear(3, 4)\n"
        "        self.blocks = Sequential(Linear(4, 4), Tanh(), Sequential(Linear(4, 4), GELU()))\n"
        "        self.drop = Dropout(0.2)\n"
        "class Model(Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.encoder = Encoder()\n"
        "        self.head = Linear(4, 2)\n"
        "        self.again = self.head\n"
        "single = Linear(2, 2)\n"
        "([n for n, _ in named_layers(Model())], [(n, l is single) for n, l in named_layers(single)])"
    )
    assert_exact(names, ["encoder.embed", "encoder.blocks.0", "encoder.blocks.1", "encoder.blocks.2.0",
                         "encoder.blocks.2.1", "encoder.drop", "head"])
    assert_exact(leaf_root, [("", True)])


@pytest.mark.points(2)
def test_profiler_medians_with_an_uneven_fake_clock(student, rng):
    batch, d0, d1 = (int(v) for v in rng.integers(2, 12, size=3))
    warmup, repeats = int(rng.integers(0, 3)), int(rng.integers(2, 6))
    calls_per_pass = 3
    ts = increasing(rng, 2 * calls_per_pass * repeats + 2 * repeats)
    x = rng.standard_normal((batch, d0)).astype(np.float32)
    result = student.value(
        FAKE_CLOCK +
        "model = Sequential(Linear(d0, d1), Sigmoid(), Linear(d1, d0))\n"
        "Profiler(warmup=w, repeats=r, clock=clock).profile(model, Tensor(x))",
        ts=ts, x=x, d0=d0, d1=d1, w=warmup, r=repeats,
    )
    for j, row in enumerate(result["layers"]):
        durations = [ts[2 * (k * calls_per_pass + j) + 1] - ts[2 * (k * calls_per_pass + j)] for k in range(repeats)]
        assert row["seconds"] == pytest.approx(float(np.median(durations)), rel=1e-12), \
            f"layer {j}: the median of its traced durations"
    base = 2 * calls_per_pass * repeats
    latency = [ts[base + 2 * k + 1] - ts[base + 2 * k] for k in range(repeats)]
    assert_exact(result["latency"]["samples"], latency)
    flops = [linear_flops(batch, d0, d1), batch * d1, linear_flops(batch, d1, d0)]
    assert_exact([row["flops"] for row in result["layers"]], flops)
    assert_exact(result["flops"], sum(flops))


@pytest.mark.points(1)
def test_profiler_finds_the_slow_layer(student, rng):
    width = int(rng.integers(4, 32))
    rows = student.value(
        "import time\n"
        "class Slow(Module):\n"
        "    def forward(self, x):\n"
        "        time.sleep(0.03)\n"
        "        return x\n"
        "model = Sequential(Linear(w, w), Slow(), ReLU())\n"
        "result = Profiler(warmup=1, repeats=3).profile(model, Tensor(np.ones((2, w))))\n"
        "[(r['name'], r['type'], r['flops'], r['seconds']) for r in result['layers']]",
        w=width,
    )
    assert [r[:3] for r in rows] == [("0", "Linear", linear_flops(2, width, width)), ("1", "Slow", None), ("2", "ReLU", 2 * width)]
    seconds = [r[3] for r in rows]
    assert seconds[1] >= 0.028 and seconds[1] > seconds[0] and seconds[1] > seconds[2], \
        f"the layer that sleeps 30 ms must dominate the profile: {seconds}"
