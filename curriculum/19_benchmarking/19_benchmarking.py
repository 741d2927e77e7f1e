# %% [markdown]
# # Module 19: Benchmarking
#
# "Version B is 12% faster" is one of the most common claims in engineering, and one of the
# least often true. A single timing is noise; two medians without their uncertainty cannot be
# compared; and "faster" alone is meaningless when the faster model is also less accurate or
# needs twice the memory. This module builds the tools that turn timings into evidence, and
# evidence into a decision.
#
# **What you build:**
#
# - `median_ci(samples, confidence)`: the median of a list of timings and a **confidence
#   interval for the median**, from order statistics (no randomness, no normality assumption).
# - `benchmark(fn, warmup, repeats, clock)`: a harness that warms up, repeats, and returns a
#   `BenchmarkResult` (median, ci_low, ci_high, samples). `Benchmark` (given) keeps the results
#   of several runs and prints them as a table.
# - `compare(baseline, candidate)`: the ratio of two medians **with its interval**, and a
#   verdict: faster, slower, or "same" (the data cannot tell them apart).
# - `dominates(a, b)` and `pareto_frontier(candidates)`: which models are worth considering
#   when accuracy (higher is better), latency and memory (lower is better) all matter.
# - `pareto_svg(candidates)`: the frontier drawn as a self-contained SVG picture, no plotting
#   library needed.
#
# **Why it matters for systems:** every optimisation of modules 15-18 (quantization, pruning,
# vectorisation, caching) is a trade: some accuracy or memory for some speed. Whether the trade
# is worth it is decided by a benchmark, so the benchmark must be honest about its own
# uncertainty, and the decision must look at every objective at once.
#
# **PyTorch equivalent:** `torch.utils.benchmark.Timer` (warm-up, `blocked_autorange`, a
# `Measurement` with median and interquartile range) and `torch.utils.benchmark.Compare` (a
# table of measurements); `pytest-benchmark` and `asv` (airspeed velocity) do the same for
# Python code; MLPerf Inference is the industry's set of rules for benchmarks that can be
# compared across companies, and its results are read as Pareto frontiers of accuracy,
# latency and cost.
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 19_benchmarking` in a terminal to see your points.

# %% tags=["export"]
import math
import time
from xml.sax.saxutils import escape, quoteattr

import numpy as np

# %% [markdown]
# ## 1. The median and its confidence interval
#
# Timings on a real machine are not bell-shaped. Most runs cluster near a floor (the time the
# work really takes), and a few are much slower: the operating system ran another process, the
# garbage collector kicked in, a cache was cold, the CPU changed frequency, another user of a
# shared machine started a job. The distribution is **skewed to the right, with a heavy tail**.
#
# - The **mean** is pulled by that tail: one run 50x slower than the others moves the mean of
#   21 runs by more than 2x. Its textbook interval (mean +- 1.96 standard errors) assumes
#   near-normal data, which timings are not.
# - The **median** ignores how far the outliers are: it only asks which value has half the
#   runs below it. It describes the *typical* run, which is what a user waits for.
#   (`timeit` reports the minimum, the least disturbed run: good for "how fast can this code
#   go", optimistic for "how fast will it be". Production teams also track tail percentiles,
#   p99, because users notice the slow requests.)
#
# **How sure are we of a median?** Run the benchmark again and you get another median. A
# *confidence interval* (CI) is a range computed from the samples that contains the true
# median (the one you would get from infinitely many runs) in, say, 95% of experiments.
#
# We use the **order-statistics interval**, which needs no randomness and no assumption about
# the shape of the distribution (only that runs are independent draws from the same one).
# Sort the samples: `x(1) <= x(2) <= ... <= x(n)` (ranks count from 1). Each sample falls below
# the true median with probability 1/2, so the number `B` of samples below it follows a
# binomial distribution, `B ~ Binomial(n, 1/2)`: `P(B = i) = comb(n, i) / 2**n`. The true
# median lies between `x(k)` and `x(n + 1 - k)` exactly when `k <= B <= n - k`, which happens
# with probability
#
# ```
# coverage(k) = 1 - 2 * P(B <= k - 1),      P(B <= k - 1) = sum(comb(n, i) for i in range(k)) / 2**n
# ```
#
# A bigger `k` gives a narrower interval with a smaller coverage. `median_ci` picks the
# **largest** `k >= 1` such that `2 * P(B <= k - 1) <= 1 - confidence` (the coverage is at
# least the confidence asked for), and returns `(median, x(k), x(n + 1 - k))`. When even `k = 1`
# is not enough (fewer than 6 samples at 95%: `2 / 2**5 = 0.0625 > 0.05`), it returns the full
# range `(median, min, max)`, whose coverage is then below the confidence: a benchmark with 5
# runs cannot say much. The median is `np.median` (the mean of the two middle values when `n`
# is even). All three are Python floats; raise `ValueError` for an empty list or a confidence
# outside `(0, 1)`. `math.comb(n, i)` gives the binomial coefficient as an exact integer.
#
# *Why not the bootstrap?* Resampling the samples with replacement many times and taking the
# spread of the resampled medians also gives an interval, and works for any statistic. For
# the median of a few dozen timings it is lumpy (the resampled medians take only a few
# distinct values), it needs a random generator (so two runs of the report differ unless
# seeded) and thousands of resamples. The order-statistics interval is exact, deterministic and
# instant, which also makes it testable exactly.

# %% tags=["export"]
def median_ci(samples, confidence=0.95):
    """(median, low, high) of `samples`: np.median and the order-statistics confidence interval
    for the median, [x(k), x(n+1-k)] with the largest k >= 1 such that
    2 * P(Binomial(n, 1/2) <= k - 1) <= 1 - confidence ((min, max) if no k qualifies).
    Python floats. ValueError for no samples or a confidence outside (0, 1)."""
    ### BEGIN SOLUTION
    values = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = int(values.size)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    k, below = 1, math.comb(n, 0) / 2**n  # below = P(B <= k - 1), grown one term at a time
    while 2 * (k + 1) <= n + 1:
        wider = below + math.comb(n, k) / 2**n  # P(B <= k)
        if 2 * wider > alpha:
            break
        k, below = k + 1, wider
    return float(np.median(values)), float(values[k - 1]), float(values[n - k])
    ### END SOLUTION

# %% [markdown]
# ### Check: the interval on known samples
#
# With 11 samples at 95%: `2 * P(B <= 1) = 2 * 12 / 2048 = 0.0117` qualifies and
# `2 * P(B <= 2) = 2 * 67 / 2048 = 0.0654` does not, so `k = 2`: the interval runs from the
# second smallest to the second largest sample. One huge outlier does not move it.

# %%
eleven = [5.0, 3.0, 9.0, 1.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0, 500.0]
assert median_ci(eleven) == (6.0, 2.0, 10.0), median_ci(eleven)
assert median_ci(eleven, confidence=0.8) == (6.0, 3.0, 9.0), "a lower confidence gives a narrower interval"
assert median_ci([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0), "too few samples: the whole range"
assert median_ci([4.0, 1.0, 3.0, 2.0, 6.0, 5.0]) == (3.5, 1.0, 6.0), "even n: the mean of the two middle values"
assert all(type(v) is float for v in median_ci([1, 2, 3]))
print("mean of the eleven:", np.mean(eleven), "  median and 95% interval:", median_ci(eleven))

# %% [markdown]
# ## 2. The harness: warm up, repeat, summarise
#
# `BenchmarkResult` (given) holds one measurement: `name`, `median`, `ci_low`, `ci_high`
# (seconds), `samples` (the list of timings, in the order they were taken) and `confidence`.
#
# `benchmark(fn, warmup=3, repeats=21, clock=time.perf_counter, confidence=0.95, name=None)`:
#
# 1. calls `fn()` `warmup` times without reading the clock (the first calls pay one-off costs:
#    caches filling, memory being mapped, lazy initialisation; on a GPU, compilation);
# 2. then `repeats` times, each timed with exactly two clock reads: read the clock, call
#    `fn()`, read the clock again; the sample is the second reading minus the first (store it
#    as a `float`);
# 3. returns `BenchmarkResult(name, median, ci_low, ci_high, samples, confidence)` with the
#    median and interval from `median_ci(samples, confidence)`; `name` defaults to
#    `getattr(fn, "__name__", "fn")`.
#
# Raise `ValueError` unless `repeats >= 1` and `warmup >= 0`, before calling `fn` at all.
#
# The clock is a parameter so that a test (or you) can pass a **fake clock** that returns a
# scripted sequence of readings: the timings are then known exactly, and so is everything
# computed from them. The real clock is `time.perf_counter`: monotonic and with the finest
# resolution available.

# %% tags=["export"]
class BenchmarkResult:
    """One measurement: the median time of a function and its confidence interval (seconds).

    BenchmarkResult(name, median, ci_low, ci_high, samples, confidence=0.95).
    PyTorch: torch.utils.benchmark.Measurement (median, iqr, times).
    """

    def __init__(self, name, median, ci_low, ci_high, samples, confidence=0.95):
        self.name = str(name)
        self.median = float(median)
        self.ci_low = float(ci_low)
        self.ci_high = float(ci_high)
        self.samples = [float(s) for s in samples]
        self.confidence = float(confidence)

    @property
    def n(self):
        return len(self.samples)

    def to_dict(self):
        """The result as plain data."""
        return {"name": self.name, "median": self.median, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "confidence": self.confidence, "n": self.n, "samples": list(self.samples)}

    def __repr__(self):
        return (f"BenchmarkResult({self.name!r}: median {self.median * 1e3:.4f} ms, "
                f"{self.confidence:.0%} CI [{self.ci_low * 1e3:.4f}, {self.ci_high * 1e3:.4f}] ms, n={self.n})")


def benchmark(fn, warmup=3, repeats=21, clock=time.perf_counter, confidence=0.95, name=None):
    """Time fn(): `warmup` untimed calls, then `repeats` calls timed by two clock reads each.
    Returns a BenchmarkResult with the median and its order-statistics interval (median_ci).
    PyTorch: torch.utils.benchmark.Timer(stmt).timeit(repeats) / blocked_autorange()."""
    ### BEGIN SOLUTION
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append(float(clock() - start))
    median, low, high = median_ci(samples, confidence)
    label = getattr(fn, "__name__", "fn") if name is None else name
    return BenchmarkResult(label, median, low, high, samples, confidence)
    ### END SOLUTION

# %% [markdown]
# ### Check: a scripted clock

# %%
readings = iter([0.0, 1.0, 1.0, 3.0, 3.0, 3.5, 10.0, 14.0, 20.0, 20.25, 30.0, 30.75])
calls = []
result = benchmark(lambda: calls.append(1), warmup=2, repeats=6, clock=lambda: next(readings), name="scripted")
assert len(calls) == 8, "2 warm-up calls and 6 timed calls"
assert result.samples == [1.0, 2.0, 0.5, 4.0, 0.25, 0.75], result.samples
assert (result.median, result.ci_low, result.ci_high) == (0.875, 0.25, 4.0), result
assert result.name == "scripted" and result.n == 6
try:
    benchmark(lambda: None, repeats=0)
    raise AssertionError("repeats=0 must raise ValueError")
except ValueError as err:
    print("bad settings:", err)

real = benchmark(lambda: time.sleep(0.002), warmup=1, repeats=9)
assert 0.0019 < real.ci_low <= real.median <= real.ci_high
print(real)

# %% [markdown]
# ## 3. Comparing two results: a ratio with its interval
#
# Is the candidate faster than the baseline? Look at the ratio of their medians, the
# candidate's median divided by the baseline's (below 1: the candidate takes less time; the
# `speedup`, the baseline's median divided by the candidate's, is its inverse: "2x faster").
#
# Each median is uncertain, so the ratio is too. A simple, conservative interval for it comes
# from the two intervals, taking the most extreme combinations:
#
# ```
# [low, high] = [ ci_low(candidate) / ci_high(baseline),  ci_high(candidate) / ci_low(baseline) ]
# ```
#
# (the candidate as fast as it plausibly is against the baseline as slow, and the reverse).
#
# If both true medians lie in their intervals (probability at least 0.95 * 0.95 ~ 0.90 for two
# independent 95% intervals), the true ratio lies in `[low, high]`. The verdict:
#
# - `"faster"` when `high < 1` (even the least favourable combination is a speed-up);
# - `"slower"` when `low > 1`;
# - `"same"` otherwise: the interval contains 1, **the data cannot tell them apart**. Run more
#   repeats, or accept that the difference is too small to matter.
#
# `compare(baseline, candidate)` takes two `BenchmarkResult`s and returns the plain dict
# `{"ratio", "low", "high", "speedup", "verdict"}`: the ratio of the medians, the ends of its
# interval, the speedup (four floats) and the verdict (a string). Raise
# `ValueError` when `baseline.ci_low <= 0` or `candidate.median <= 0` (a time of zero means the
# clock was too coarse for the work: time more work per sample).

# %% tags=["export"]
def compare(baseline, candidate):
    """The time ratio candidate/baseline of two BenchmarkResults with its conservative interval
    [cand.ci_low / base.ci_high, cand.ci_high / base.ci_low], the speedup base/cand, and the
    verdict "faster" (high < 1), "slower" (low > 1) or "same". Returns a dict of plain data."""
    ### BEGIN SOLUTION
    if baseline.ci_low <= 0 or candidate.median <= 0:
        raise ValueError("compare needs positive times (the clock is too coarse for this work)")
    ratio = candidate.median / baseline.median
    low = candidate.ci_low / baseline.ci_high
    high = candidate.ci_high / baseline.ci_low
    verdict = "faster" if high < 1 else "slower" if low > 1 else "same"
    return {"ratio": float(ratio), "low": float(low), "high": float(high),
            "speedup": float(baseline.median / candidate.median), "verdict": verdict}
    ### END SOLUTION

# %% [markdown]
# ### Check: three verdicts

# %%
base = BenchmarkResult("base", 2.0, 1.8, 2.5, [2.0])
assert compare(base, BenchmarkResult("quick", 1.0, 0.9, 1.2, [1.0])) == \
    {"ratio": 0.5, "low": 0.9 / 2.5, "high": 1.2 / 1.8, "speedup": 2.0, "verdict": "faster"}
assert compare(base, BenchmarkResult("slow", 4.0, 3.8, 4.5, [4.0]))["verdict"] == "slower"
assert compare(base, BenchmarkResult("close", 2.1, 1.7, 2.6, [2.1]))["verdict"] == "same"
print(compare(base, BenchmarkResult("close", 2.1, 1.7, 2.6, [2.1])))

# %% [markdown]
# `Benchmark` (given) is the harness as an object: it keeps its settings, runs and stores
# named results, compares two of them by name, and prints them as a table with `format_table`
# (given: plain `str` formatting, text columns left-aligned, numbers right-aligned; the
# `tabulate` package does the same with more styles).

# %% tags=["export"]
def format_table(rows, columns=None, floatfmt=".4g"):
    """An aligned plain-text table of a list of dicts (columns: the keys to show, default the
    first row's). Text columns are left-aligned, numbers right-aligned."""
    rows = list(rows)
    columns = list(columns if columns is not None else (rows[0].keys() if rows else []))

    def cell(value):
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value)

    cells = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    text = [any(isinstance(row.get(c), str) for row in rows) for c in columns]

    def line(values):
        return "  ".join(v.ljust(w) if t else v.rjust(w) for v, w, t in zip(values, widths, text)).rstrip()

    out = [line([str(c) for c in columns]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


class Benchmark:
    """A benchmark harness: Benchmark(warmup=3, repeats=21, clock=time.perf_counter,
    confidence=0.95). run(fn, name) measures and stores a result; compare(a, b) compares two
    stored results by name; table(baseline=None) formats them all.
    PyTorch: torch.utils.benchmark.Timer + torch.utils.benchmark.Compare."""

    def __init__(self, warmup=3, repeats=21, clock=time.perf_counter, confidence=0.95):
        if repeats < 1 or warmup < 0:
            raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
        self.warmup, self.repeats, self.clock, self.confidence = warmup, repeats, clock, confidence
        self.results = {}

    def run(self, fn, name=None):
        result = benchmark(fn, warmup=self.warmup, repeats=self.repeats, clock=self.clock,
                           confidence=self.confidence, name=name)
        self.results[result.name] = result
        return result

    def compare(self, baseline, candidate):
        return compare(self.results[baseline], self.results[candidate])

    def table(self, baseline=None):
        rows = []
        for name, r in self.results.items():
            row = {"name": name, "median ms": r.median * 1e3, "ci low ms": r.ci_low * 1e3,
                   "ci high ms": r.ci_high * 1e3, "n": r.n}
            if baseline is not None:
                c = compare(self.results[baseline], r)
                row["x baseline"] = f"{c['ratio']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"
                row["verdict"] = c["verdict"]
            rows.append(row)
        return format_table(rows)

# %% [markdown]
# ## 4. Many objectives: the Pareto frontier
#
# A model is never just "fast". Each candidate has an **accuracy** (higher is better), a
# **latency** and a **memory** footprint (lower is better). Candidate `a` **dominates** `b`
# when `a` is at least as good as `b` on every objective and strictly better on at least one:
# then nobody should ever pick `b`. The **Pareto frontier** is the set of candidates that no
# other candidate dominates: the only sensible choices, each a different trade-off. Which one
# to deploy depends on the constraints (a phone has little memory, a search engine a latency
# budget), but it is always one on the frontier.
#
# Candidates are dicts such as `{"name": "mlp-64", "accuracy": 0.93, "latency": 1.2e-4,
# "memory": 17_000}`. The objectives are a list of `(key, sense)` pairs, `sense` being
# `"max"` (higher is better) or `"min"` (lower is better); the default, `OBJECTIVES`, is
# accuracy max, latency min, memory min.
#
# - `dominates(a, b, objectives=OBJECTIVES)`: `True` or `False` (Python bools) as defined above.
#   Note the two consequences of "strictly better on at least one": no candidate dominates
#   itself, and two candidates with **equal** values on every objective (duplicates, or the
#   same model measured twice) do not dominate each other.
# - `pareto_frontier(candidates, objectives=OBJECTIVES)`: the list of the indices (into
#   `candidates`, increasing) of the candidates that no other candidate dominates. So
#   duplicates on the frontier are all kept, and a candidate that ties another on some
#   objectives is kept unless something beats it on one objective without losing on any.
#
# Comparing every pair costs `O(n^2)` dominance checks. For the tens or hundreds of models a
# team benchmarks, that is nothing next to measuring them. (With two objectives, sorting by
# one and scanning gives `O(n log n)`; for millions of points in many dimensions there are
# divide-and-conquer algorithms, Kung et al. 1975. Correctness first: the simple version is
# also the one to test the clever ones against.)

# %% tags=["export"]
OBJECTIVES = (("accuracy", "max"), ("latency", "min"), ("memory", "min"))


def dominates(a, b, objectives=OBJECTIVES):
    """True when candidate a is at least as good as b on every objective (key, "max"|"min")
    and strictly better on at least one; False otherwise (equal candidates: False)."""
    ### BEGIN SOLUTION
    strictly = False
    for key, sense in objectives:
        if sense not in ("max", "min"):
            raise ValueError(f"an objective's sense is 'max' or 'min', got {sense!r} for {key!r}")
        better = a[key] > b[key] if sense == "max" else a[key] < b[key]
        worse = a[key] < b[key] if sense == "max" else a[key] > b[key]
        if worse:
            return False
        strictly = strictly or better
    return bool(strictly)
    ### END SOLUTION


def pareto_frontier(candidates, objectives=OBJECTIVES):
    """The indices (increasing) of the candidates that no other candidate dominates.
    O(n^2) pairwise checks; duplicates do not dominate each other, so all are kept."""
    ### BEGIN SOLUTION
    candidates = list(candidates)
    return [i for i, c in enumerate(candidates)
            if not any(dominates(other, c, objectives) for j, other in enumerate(candidates) if j != i)]
    ### END SOLUTION

# %% [markdown]
# ### Check: ties and duplicates

# %%
points = [
    {"name": "small", "accuracy": 0.80, "latency": 1.0, "memory": 10},
    {"name": "big", "accuracy": 0.95, "latency": 5.0, "memory": 90},
    {"name": "worse", "accuracy": 0.80, "latency": 2.0, "memory": 10},   # small beats it on latency only
    {"name": "copy", "accuracy": 0.80, "latency": 1.0, "memory": 10},    # a duplicate of small
    {"name": "lean", "accuracy": 0.90, "latency": 5.0, "memory": 40},    # slower than small, more accurate
]
assert dominates(points[0], points[2]) is True and dominates(points[2], points[0]) is False
assert dominates(points[0], points[3]) is False and dominates(points[0], points[0]) is False
assert pareto_frontier(points) == [0, 1, 3, 4], pareto_frontier(points)
assert pareto_frontier(points, objectives=[("accuracy", "max")]) == [1], "only accuracy: the most accurate"
print("frontier:", [points[i]["name"] for i in pareto_frontier(points)])

# %% [markdown]
# ## 5. Reporting: a table and a picture
#
# A frontier is best seen. SVG (Scalable Vector Graphics) is XML: a browser, a notebook
# (`IPython.display.SVG`) or a GitHub page shows it, and a test can parse it. No plotting
# library is needed, only strings.
#
# `pareto_svg(candidates, frontier=None, x="latency", y="accuracy", width=480, height=320,
# margin=50, title="Pareto frontier")` returns one string, a complete SVG document:
#
# 1. the root `<svg xmlns="http://www.w3.org/2000/svg" width="W" height="H" viewBox="0 0 W H">`
#    and, as its first child, `<title>` holding `title`;
# 2. the two axes as `<line class="axis" .../>`: from `(margin, H - margin)` to
#    `(W - margin, H - margin)` (x axis) and to `(margin, margin)` (y axis), and two
#    `<text class="label" ...>` naming `x` and `y`;
# 3. the frontier as one `<polyline class="frontier" fill="none" points="..."/>` through the
#    frontier candidates sorted by `(x value, y value)`; `points` is `"px,py px,py ..."`;
# 4. one `<circle cx=".." cy=".." r="4" class="frontier"/>` per candidate, **in the order of
#    `candidates`**, with `class="dominated"` for those not on the frontier, each holding a
#    `<title>` child with the candidate's name (`str(candidate.get("name", index))`): a
#    browser shows it when the mouse is over the point.
#
# `frontier=None` means `pareto_frontier(candidates)`. Pixel coordinates come from `_scale`
# (given): `px = _scale(value_x, min_x, max_x, margin, W - margin)` and
# `py = _scale(value_y, min_y, max_y, H - margin, margin)`, the mins and maxes taken over all
# candidates. **SVG's y axis points down**: the reversed range puts the highest accuracy at
# the top. Write every coordinate with two decimals (`f"{px:.2f}"`).
#
# Names are text from outside: a model called `fp16 & <int8>` would break the XML. Escape text
# with `escape(text)` and attribute values with `quoteattr(text)` (both imported from
# `xml.sax.saxutils`; `quoteattr` adds the quotes). `save_svg(svg, path)` (given) writes the file.

# %% tags=["export"]
def _scale(value, lo, hi, out_lo, out_hi):
    """Map value from [lo, hi] to [out_lo, out_hi] linearly (the middle when lo == hi)."""
    if hi == lo:
        return (out_lo + out_hi) / 2
    return out_lo + (value - lo) / (hi - lo) * (out_hi - out_lo)


def pareto_svg(candidates, frontier=None, x="latency", y="accuracy", width=480, height=320,
               margin=50, title="Pareto frontier"):
    """A self-contained SVG document (a str): axes, the frontier as a polyline sorted by
    (x, y), one circle per candidate (class "frontier" or "dominated") with its name as title."""
    ### BEGIN SOLUTION
    candidates = list(candidates)
    if frontier is None:
        frontier = pareto_frontier(candidates)
    on_frontier = set(frontier)
    xs = [float(c[x]) for c in candidates]
    ys = [float(c[y]) for c in candidates]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)

    def pixel(i):
        return (_scale(xs[i], x_lo, x_hi, margin, width - margin),
                _scale(ys[i], y_lo, y_hi, height - margin, margin))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             f"<title>{escape(str(title))}</title>",
             f'<line class="axis" x1="{margin}" y1="{height - margin}" x2="{width - margin}" '
             f'y2="{height - margin}" stroke="black"/>',
             f'<line class="axis" x1="{margin}" y1="{height - margin}" x2="{margin}" y2="{margin}" stroke="black"/>',
             f'<text class="label" x="{width / 2:.2f}" y="{height - margin / 3:.2f}" '
             f'text-anchor="middle">{escape(str(x))}</text>',
             f'<text class="label" x="{margin / 3:.2f}" y="{height / 2:.2f}" text-anchor="middle" '
             f'transform="rotate(-90 {margin / 3:.2f} {height / 2:.2f})">{escape(str(y))}</text>']
    path = sorted(on_frontier, key=lambda i: (xs[i], ys[i]))
    points = " ".join(f"{px:.2f},{py:.2f}" for px, py in map(pixel, path))
    parts.append(f'<polyline class="frontier" fill="none" stroke="crimson" points="{points}"/>')
    for i, c in enumerate(candidates):
        px, py = pixel(i)
        kind = "frontier" if i in on_frontier else "dominated"
        colour = "crimson" if kind == "frontier" else "grey"
        parts.append(f'<circle cx="{px:.2f}" cy="{py:.2f}" r="4" class={quoteattr(kind)} fill="{colour}">'
                     f"<title>{escape(str(c.get('name', i)))}</title></circle>")
    parts.append("</svg>")
    return "\n".join(parts)
    ### END SOLUTION


def save_svg(svg, path):
    """Write an SVG string to a file (UTF-8); returns the path."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(svg)
    return path

# %% [markdown]
# ### Check: the picture parses as XML

# %%
import xml.etree.ElementTree as ET

svg = pareto_svg(points + [{"name": "fp16 & <int8>", "accuracy": 0.85, "latency": 3.0, "memory": 5}])
root = ET.fromstring(svg)
SVG_NS = "{http://www.w3.org/2000/svg}"
circles = list(root.iter(SVG_NS + "circle"))
assert root.tag == SVG_NS + "svg" and len(circles) == 6
assert [c.get("class") for c in circles] == ["frontier", "frontier", "dominated", "frontier", "frontier", "frontier"]
assert circles[-1].find(SVG_NS + "title").text == "fp16 & <int8>", "names must be escaped, and survive"
assert (float(circles[0].get("cx")), float(circles[0].get("cy"))) == (50.0, 270.0), "least latency, least accuracy: bottom left"
print(svg[:300], "...")

# %% [markdown]
# ## 6. Systems analysis: which MLP is worth deploying?
#
# Run the cell below. It measures, on your machine:
#
# 1. six MLPs on the digits (1,797 images of 64 pixels; 80% to fit, 20% to test): random hidden
#    layers of several widths and depths, with a readout fitted in closed form by least squares
#    (no training loop needed: the hidden layers are fixed random features, and the readout is
#    the linear map that best predicts one-hot labels from them). For each: the test
#    **accuracy**, the forward **latency** on the test set with your harness (median and 95%
#    interval), and the **memory** of its parameters (float32 bytes);
# 2. their Pareto frontier, as a table and as an SVG file (`benchmark_pareto.svg`, open it);
# 3. two `compare` verdicts: a wide model against a narrow one, and one model against
#    *itself*, measured twice;
# 4. how the interval narrows as the number of repeats grows.
#
# **Measure on a quiet machine, with one BLAS thread** (`OPENBLAS_NUM_THREADS=1 jupyter lab`):
# the cell prints the setting it ran with. Read the numbers before answering the questions.

# %% tags=["analysis"]
import os

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.datasets import load_digits
from tinytorch.datasets.digits import train_test_split

threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default (all cores)"
print(f"BLAS threads: {threads}; CPU cores: {os.cpu_count()}")
images, labels = load_digits()
x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.2, seed=0)
onehot = np.eye(10, dtype=np.float32)[y_train]


def build(widths, seed=0):
    """Random ReLU features of the given widths, then a least-squares readout fitted here."""
    layers, fan_in = [], 64
    for depth, width in enumerate(widths):
        layers += [Linear(fan_in, width, rng=seed + depth), ReLU()]
        fan_in = width
    features = Sequential(*layers)
    h = features(Tensor(x_train)).data
    h1 = np.hstack([h, np.ones((len(h), 1), np.float32)])
    readout = np.linalg.solve(h1.T @ h1 + 1e-2 * np.eye(fan_in + 1), h1.T @ onehot).astype(np.float32)

    def predict(x):
        z = features(Tensor(x)).data
        return z @ readout[:-1] + readout[-1]

    params = sum(p.data.size for p in features.parameters()) + readout.size
    return predict, params


harness = Benchmark(warmup=3, repeats=31)
candidates = []
for widths in [(8,), (32,), (128,), (512,), (128, 128), (512, 512)]:
    name = "mlp-" + "x".join(map(str, widths))
    predict, params = build(widths)
    accuracy = float((predict(x_test).argmax(axis=1) == y_test).mean())
    result = harness.run(lambda: predict(x_test), name=name)
    candidates.append({"name": name, "accuracy": accuracy, "latency": result.median,
                       "memory": params * 4, "params": params})

front = pareto_frontier(candidates)
print(f"\n1-2. {len(candidates)} MLPs, latency on {len(x_test)} test images (median of {harness.repeats} runs)")
print(format_table([{**c, "latency ms": c["latency"] * 1e3, "ci ms": "[{:.3f}, {:.3f}]".format(
    harness.results[c["name"]].ci_low * 1e3, harness.results[c["name"]].ci_high * 1e3),
    "memory KB": c["memory"] / 1024, "frontier": "yes" if i in front else "-"} for i, c in enumerate(candidates)],
    columns=["name", "accuracy", "latency ms", "ci ms", "params", "memory KB", "frontier"]))
print("   dominated:", [(candidates[i]["name"], "by " + ", ".join(candidates[j]["name"] for j in front
                       if dominates(candidates[j], candidates[i]))) for i in range(len(candidates)) if i not in front])
print("   picture:", os.path.abspath(save_svg(pareto_svg(candidates, title="MLPs on the digits"), "benchmark_pareto.svg")))

print("\n3. Comparisons (ratio = candidate / baseline time)")
print("   mlp-512 vs mlp-32:       ", harness.compare("mlp-32", "mlp-512"))
predict, _ = build((128,))
harness.run(lambda: predict(x_test), name="mlp-128 again")
print("   mlp-128 vs itself again: ", harness.compare("mlp-128", "mlp-128 again"))
print(harness.table(baseline="mlp-32"))

print("\n4. The interval narrows with repeats (mlp-128 on 64 images)")
batch = x_test[:64]
rows = []
for repeats in (5, 11, 21, 51, 101, 201):
    r = benchmark(lambda: predict(batch), warmup=3, repeats=repeats)
    rows.append({"repeats": repeats, "median us": r.median * 1e6, "ci low us": r.ci_low * 1e6,
                 "ci high us": r.ci_high * 1e6, "width % of median": 100 * (r.ci_high - r.ci_low) / r.median,
                 "mean us": float(np.mean(r.samples)) * 1e6, "max us": max(r.samples) * 1e6})
print(format_table(rows))

# %% [markdown]
# ## 7. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 6 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (the median and its interval).**
# Section 6 measured how the 95% interval of the median narrows as the number of repeats grows,
# and printed the mean and the maximum beside the median. Why does a benchmark on a shared
# machine report the median rather than the mean? How fast did the interval narrow with the
# number of repeats, and how many repeats would you need to tell apart two versions whose true
# medians differ by 2%? Which assumption of the order-statistics interval is weakest for real
# timings, and how would you guard against it?

# %% [markdown] tags=["answer"] question="q1"
# Timings are skewed to the right: most runs sit near a floor and a few are slowed by other
# processes, interrupts, the garbage collector or frequency changes. The table of section 6
# shows it: the max is far above the median and the mean sits above the median, pulled by the
# tail. The median describes the typical run and does not move when one run is 50x slower;
# the mean's interval assumes near-normal data. The width of the order-statistics interval shrank
# roughly like 1/sqrt(n): from tens of percent of the median with 5 repeats (where `median_ci`
# falls back to the whole range, whose coverage is below 95%) to a few percent at 51 and about
# 1-2% at 201 repeats. To separate a 2% difference, the ratio interval of `compare` (built from
# both intervals) must exclude 1, so each interval must be narrower than about 1% of the median:
# hundreds of repeats at least (the width goes as 1/sqrt(n), so halving it costs 4x the runs),
# and on a noisy machine possibly never: then the honest verdict is "same". The weakest
# assumption is independence and identical distribution: real timings drift (thermal
# throttling, turbo, a background job starting halfway), so consecutive samples are correlated
# and the interval is too narrow. Guards: warm-up, one BLAS thread, a quiet machine, interleave
# the two versions (A, B, A, B...) instead of running all of A then all of B, repeat the whole
# benchmark on another day, and look at the samples over time, not only at their median.

# %% [markdown]
# **Question 2 (the Pareto frontier).**
# Section 6 measured six MLPs on the digits and printed their Pareto frontier over accuracy,
# latency and memory. Which models are on the frontier and which are dominated, and by which?
# Why is mlp-128x128 dominated although it has more parameters than mlp-128, and what does it
# mean that mlp-512x512 is on the frontier? Which model would you deploy on a microcontroller
# with 64 KB of memory, and which on a server with a 1 ms latency budget? What changes in this
# analysis for models with 1B parameters?

# %% [markdown] tags=["answer"] question="q2"
# On my run the frontier holds the single-hidden-layer models, from mlp-8 (0.68 accuracy,
# fastest, 2 KB) through mlp-32 and mlp-128 (0.97) to mlp-512 (0.98, 150 KB): each buys
# accuracy with latency and memory, so none dominates another. mlp-128x128 is dominated by
# mlp-128: slower, larger and *less* accurate, because a second layer of *random* features
# adds computation but no useful information for a linear readout (trained layers would
# change that). mlp-512x512 stays on the frontier only because it is the most accurate
# (0.989 against 0.981), at about 12x the latency and 8x the memory of mlp-512: being on the
# frontier means "not dominated", not "a good trade". `dominates` needs no worse on every
# objective and strictly better on one, so any model that is best on a single objective is on
# the frontier, and a frontier model can still be a poor choice for every real constraint.
# For a 64 KB microcontroller the memory constraint removes mlp-512 and above (150 KB): I
# would take the most accurate frontier model that fits, mlp-128 (9,610 parameters, 38 KB,
# leaving room for activations), or mlp-512 quantized to int8 (38 KB, module 15) if its
# accuracy survives. With a 1 ms budget on a server, mlp-512x512 (several ms, with a wide
# interval) is out and mlp-512 (about 0.6 ms) is the most accurate model within the budget,
# measured at the batch size served. At 1B parameters every candidate costs hours to
# evaluate, so the frontier is explored with few points; memory becomes a hard constraint
# (4 GB float32, does it fit on the accelerator?) rather than a number to minimise; latency
# depends on batch size, sequence length and hardware, so the frontier must be measured in
# the deployment setting; and accuracy needs a large, held-out evaluation with its own
# confidence interval, because differences between frontier models are often within noise.

# %% [markdown]
# **Question 3 (honest comparisons).**
# Section 6 compared a wide MLP with a narrow one, and one model with itself measured twice,
# using your `compare`. What did the two verdicts say, and what does the ratio interval add to
# the ratio of medians alone? A colleague reports "my change makes inference 8% faster" from one
# run of each version. List what could make that claim wrong, and describe the benchmark you
# would ask for before merging the change into a framework used by thousands of models.

# %% [markdown] tags=["answer"] question="q3"
# The wide model came out "slower" with a ratio interval far above 1; the same model measured
# twice gave a ratio close to 1 whose interval contains 1, verdict "same", even though the two
# medians were not identical: without the interval, the tiny difference between two runs of
# identical code would read as a speed-up or slow-down. The interval (built from the two
# medians' intervals, conservative: at least ~90% coverage) says which differences the data
# can support. A single run of each version can be wrong because of warm-up (the first run pays
# caching, allocation, compilation), noise from other processes and thread scheduling, frequency
# scaling and thermal state, the order of the runs (the second benefits from warm caches),
# different inputs or batch sizes, a different BLAS thread count, or a change that helps
# the benchmark's shape but hurts others. Before merging I would ask for: both versions run on
# the same quiet machine with pinned threads, warm-up then many interleaved repeats, medians
# with confidence intervals and a ratio interval that excludes 1 (or "same" accepted), the
# whole benchmark repeated in fresh processes, results across a suite of model sizes and batch
# sizes (a speed-up at batch 1 can be a slow-down at batch 256), unchanged accuracy, and memory
# reported too, so the change is judged on the whole Pareto picture. This is what
# `torch.utils.benchmark`, asv and MLPerf's rules automate, and what CI regression dashboards
# track over time.
