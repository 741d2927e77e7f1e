"""Hidden graded tests of module 20 (Capstone: the Torch Olympics): submissions, defects and
their positions, architectures, dtypes, clock readings, records, rules and tolerances drawn at
grading time. Oracles: expected schema keys known by construction, NumPy forward passes,
np.median with binomial ranks, FLOPs from shapes, reference rules and rankings written here."""

import math

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = [pytest.mark.module("20_capstone"), pytest.mark.hidden]

EVENT_NAMES = ["budget", "fastest", "smallest"]
FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"
ACTS = ["ReLU", "Tanh", "Sigmoid", "GELU"]


def chain(rng, depth=None):
    depth = int(rng.integers(1, 4)) if depth is None else depth
    widths = [64] + [int(w) for w in rng.integers(3, 30, size=depth - 1)] + [10]
    layers, linear_at = [], []
    for i in range(depth):
        linear_at.append(len(layers))
        layers.append({"type": "Linear", "in_features": widths[i], "out_features": widths[i + 1]})
        if i < depth - 1:
            layers.append({"type": str(rng.choice(ACTS))})
            if rng.random() < 0.3:
                layers.append({"type": "Dropout", "p": float(rng.uniform(0, 0.9))})
    return layers, linear_at, widths


def ci_rank(n, confidence=0.95):
    best = 1
    for k in range(1, n // 2 + 1):
        if 2 * sum(math.comb(n, i) for i in range(k)) / 2**n <= 1 - confidence:
            best = k
    return best


def gelu(h):
    return 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))


def oracle_disqualify(record, limits):
    out = []
    for key, attribute, kind in [("accuracy", "min_accuracy", "min"), ("latency_ms", "max_latency_ms", "max"),
                                 ("peak_bytes", "max_peak_bytes", "max"), ("param_bytes", "max_param_bytes", "max")]:
        limit = limits.get(attribute)
        if limit is not None and ((record[key] < limit) if kind == "min" else (record[key] > limit)):
            out.append((key, record[key], limit))
    return out


def oracle_rank(records, rank_by, sense, tolerance, tie_break):
    """Groups by a union of neighbours (sorted order), then each group by tie-breakers and id."""
    sign = 1 if sense == "min" else -1
    tie = lambda r: tuple(r[k] for k in tie_break) + (r["student"],)  # noqa: E731
    ordered = sorted(records, key=lambda r: (sign * r[rank_by],) + tie(r))
    out, group = [], []
    for r in ordered:
        if group:
            prev = group[-1][rank_by]
            near = r[rank_by] <= prev * (1 + tolerance) if sense == "min" else r[rank_by] >= prev * (1 - tolerance)
            if not near:
                out += sorted(group, key=tie)
                group = []
        group.append(r)
    return [r["student"] for r in out + sorted(group, key=tie)]


def records_for(rng, count, continuous=False):
    out = []
    for i in rng.permutation(count):
        latency = float(rng.uniform(0.5, 3.0)) if continuous else float(rng.choice([0.9, 1.0, 1.05, 1.3, 1.6, 2.0, 2.1]))
        out.append({"student": f"p{int(i):03d}", "accuracy": float(rng.integers(85, 100)) / 100, "latency_ms": latency,
                    "param_bytes": int(rng.choice([64, 128, 256, 512])), "peak_bytes": int(rng.integers(1, 6)) * 512,
                    "flops": int(rng.choice([5, 50, 500]))})
    return out


@pytest.mark.points(2)
def test_validate_metadata_random_defects(student, rng):
    layers, _, _ = chain(rng)
    base = {"student": f"u{int(rng.integers(10**6))}", "events": [str(e) for e in rng.permutation(EVENT_NAMES)],
            "description": "x" * int(rng.integers(1, 900)), "model": {"weights": "w.npz", "layers": layers}}
    if rng.random() < 0.5:
        base["team"] = [base["student"], "partner"]
    slots = [  # at most one defect per slot, so that no two defects touch the same key
        {"unknown": lambda m: ["modle"] if m.__setitem__("modle", {}) is None else []},
        {"missing student": lambda m: ["student"] if m.pop("student") else [],
         "bad student": lambda m: ["student"] if m.__setitem__("student", int(rng.integers(100))) is None else []},
        {"bad team": lambda m: ["team"] if m.__setitem__("team", ["ok", "not ok"]) is None else []},
        {"long description": lambda m: ["description"] if m.__setitem__("description", "y" * 1001) is None else []},
        {"events not a list": lambda m: ["events"] if m.__setitem__("events", "fastest") is None else [],
         "unknown event": lambda m: [f"events[{len(m['events']) - 1}]"]
         if m["events"].__setitem__(len(m["events"]) - 1, "slowest") is None else []},
        {"weights path": lambda m: ["model.weights"] if m["model"].__setitem__(
            "weights", str(rng.choice(["/etc/passwd", "sub/w.npz", "w.pkl", ".npz"]))) is None else [],
         "too many layers": lambda m: ["model.layers"]
         if m["model"].__setitem__("layers", [{"type": "ReLU"}] * 33) is None else [],
         "model not a mapping": lambda m: ["model"] if m.__setitem__("model", ["w.npz"]) is None else []},
    ]
    cases, expected = [], []
    for _ in range(4):
        meta = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in base.items()}
        keys = []
        for slot in rng.choice(len(slots), size=int(rng.integers(1, 4)), replace=False):
            options = list(slots[int(slot)].values())
            keys += options[int(rng.integers(len(options)))](meta)
        cases.append(meta)
        expected.append(sorted(keys))
    got = student.value("[sorted(e.key for e in validate_metadata(m, file='q.yaml')) for m in cases] + "
                        "[validate_metadata(good)]", cases=cases, good=base)
    assert got[-1] == [], f"a valid submission has no errors, got {got[-1]}"
    for meta, keys, result in zip(cases, expected, got):
        assert result == keys, f"validate_metadata({meta!r:.200}): expected errors at {keys}, got {result}"


@pytest.mark.points(2)
def test_validate_layers_random_defect_positions(student, rng):
    cases = []
    for _ in range(6):
        layers, linear_at, widths = chain(rng, depth=int(rng.integers(2, 4)))
        kind = str(rng.choice(["type", "option", "width", "classes", "bool", "range", "softmax"]))
        j = int(rng.integers(1, len(linear_at)))   # a Linear after the first
        at = linear_at[j]
        if kind == "type":
            layers.insert(at, {"type": str(rng.choice(["Conv2d", "Lambda", "os.system", "linear"]))})
            keys = [f"model.layers[{at}].type"]
        elif kind == "option":
            layers[at] = {**layers[at], "init": "xavier"}
            keys = [f"model.layers[{at}].init"]
        elif kind == "width":
            layers[at] = {**layers[at], "in_features": layers[at]["in_features"] + int(rng.integers(1, 5))}
            keys = [f"model.layers[{at}].in_features"]
        elif kind == "classes":
            layers[linear_at[-1]] = {**layers[linear_at[-1]], "out_features": int(rng.integers(11, 20))}
            keys = [f"model.layers[{linear_at[-1]}].out_features"]
        elif kind == "bool":
            layers[at] = {**layers[at], "bias": "yes"}
            keys = [f"model.layers[{at}].bias"]
        elif kind == "range":
            layers[at] = {**layers[at], "in_features": 5000}
            keys = [f"model.layers[{at}].in_features"]
        else:
            layers.append({"type": "Softmax", "dim": int(rng.choice([0, 2]))})
            keys = [f"model.layers[{len(layers) - 1}].dim"]
        cases.append((layers, sorted(keys)))
    cases.append(([{"type": "Linear", "in_features": 64, "out_features": 10, "bias": False, "dtype": "float16"},
                   {"type": "Softmax", "dim": 1}, {"type": "Dropout", "p": 0}], []))
    got = student.value("[sorted(e.key for e in validate_layers(c)) for c in cases]", cases=[c[0] for c in cases])
    for (layers, keys), result in zip(cases, got):
        assert result == keys, f"validate_layers({layers!r:.240}): expected errors at {keys}, got {result}"


@pytest.mark.points(3)
def test_build_model_random_architectures(student, rng):
    layers, linear_at, widths = chain(rng, depth=int(rng.integers(1, 4)))
    arrays = {}
    for i, at in enumerate(linear_at):
        dtype, bias = str(rng.choice(["float32", "float16", "int8"])), bool(rng.random() < 0.7)
        layers[at] = {**layers[at], "dtype": dtype, "bias": bias}
        shape = (widths[i + 1], widths[i])
        if dtype == "int8":
            arrays[f"{at}.weight"] = rng.integers(-127, 128, size=shape).astype(np.int8)
            arrays[f"{at}.weight_scale"] = rng.uniform(1e-3, 2e-2, size=shape[0]).astype(np.float32)
        else:
            arrays[f"{at}.weight"] = (rng.standard_normal(shape) * 0.3).astype(dtype)
        if bias:
            arrays[f"{at}.bias"] = rng.standard_normal(shape[0]).astype("float32" if dtype == "int8" else dtype)
    x = rng.random((int(rng.integers(2, 9)), 64)).astype(np.float32)
    got = student.value("build_model(layers, arrays)(Tensor(x)).data", layers=layers, arrays=arrays, x=x)
    h = x.astype(np.float64)
    for at, spec in enumerate(layers):
        if spec["type"] == "Linear":
            w = arrays[f"{at}.weight"].astype(np.float64)
            if spec["dtype"] == "int8":
                w = w * arrays[f"{at}.weight_scale"].astype(np.float64)[:, None]
            h = h @ w.T + (arrays[f"{at}.bias"].astype(np.float64) if spec["bias"] else 0)
        elif spec["type"] == "ReLU":
            h = np.maximum(h, 0)
        elif spec["type"] == "Tanh":
            h = np.tanh(h)
        elif spec["type"] == "Sigmoid":
            h = 1 / (1 + np.exp(-h))
        elif spec["type"] == "GELU":
            h = gelu(h)
        # Dropout: the identity in evaluation mode
    assert_array(got, h, rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_build_model_first_problem_in_layer_order(student, rng):
    layers, linear_at, widths = chain(rng, depth=3)
    arrays = {}
    for i, at in enumerate(linear_at):
        arrays[f"{at}.weight"] = rng.standard_normal((widths[i + 1], widths[i])).astype(np.float32)
        arrays[f"{at}.bias"] = rng.standard_normal(widths[i + 1]).astype(np.float32)
    late, early = linear_at[2], linear_at[1]
    broken = {**arrays, f"{late}.weight": arrays[f"{late}.weight"].T.copy(), f"{early}.bias": np.float32([np.inf] * widths[2])}
    missing_scale = [dict(s, dtype="int8") if s["type"] == "Linear" else s for s in layers]
    q = {k: (v.astype(np.int8) if k.endswith("weight") else v) for k, v in arrays.items()}
    got = student.value(
        "def first(layers, arrays):\n"
        "    try:\n"
        "        build_model(layers, arrays, file='m.npz')\n"
        "    except SubmissionError as err:\n"
        "        return err.key\n"
        "[first(layers, broken), first(int8, q), first(layers, dict(arrays, zzz=arrays[k]))]",
        layers=layers, broken=broken, int8=missing_scale, q=q, arrays=arrays, k=f"{early}.bias")
    assert got == [f"{early}.bias", f"{linear_at[0]}.weight_scale", "zzz"], \
        f"expected the first problem in layer order ({early}.bias), a missing int8 scale and the extra array, got {got}"


@pytest.mark.points(3)
def test_score_model_random_model_and_clock(student, rng):
    n = int(rng.integers(10, 80))
    x = rng.random((n, 64)).astype(np.float32)
    w = rng.standard_normal((10, 64)).astype(np.float32)
    y = np.where(rng.random(n) < 0.6, (x @ w.T).argmax(axis=1), rng.integers(0, 10, size=n))
    warmup, repeats = int(rng.integers(0, 5)), int(rng.integers(3, 30))
    ts = [float(t) for t in 5 + np.cumsum(rng.exponential(0.002, size=2 * repeats) + 1e-6)]
    record = student.value(
        FAKE_CLOCK + "m = Sequential(Linear(64, 10, bias=False, rng=3), Softmax())\n"
        "m.load_state_dict({'0.weight': w})\nscore_model(m, x, y, 2560, warmup=wu, repeats=r, clock=clock)",
        ts=ts, w=w, x=x, y=y, wu=warmup, r=repeats)
    samples = sorted(ts[2 * i + 1] - ts[2 * i] for i in range(repeats))
    k = ci_rank(repeats)
    assert_exact(record["accuracy"], float(np.mean((x @ w.T).argmax(axis=1) == y)))
    assert record["latency_ms"] == pytest.approx(float(np.median(samples)) * 1e3, rel=1e-9)
    assert record["latency_low_ms"] == pytest.approx(samples[k - 1] * 1e3, rel=1e-9)
    assert record["latency_high_ms"] == pytest.approx(samples[repeats - k] * 1e3, rel=1e-9)
    assert_exact(record["flops"], 2 * n * 64 * 10 + n * 10)
    assert_exact(record["param_bytes"], 2560)
    assert type(record["peak_bytes"]) is int and n * 10 * 4 <= record["peak_bytes"] < 50 * 2**20


@pytest.mark.points(1)
def test_disqualify_every_rule_and_its_limit(student, rng):
    records = records_for(rng, 10)
    limits = {"min_accuracy": float(rng.choice([0.9, 0.92, 0.95])), "max_latency_ms": float(rng.choice([1.0, 1.3, 2.0])),
              "max_peak_bytes": int(rng.choice([1024, 1536, 2048])), "max_param_bytes": int(rng.choice([128, 256]))}
    for name in [n for n in limits if rng.random() < 0.3]:
        limits[name] = None
    records.append({"student": "edge", "accuracy": limits["min_accuracy"] or 0.9, "latency_ms": limits["max_latency_ms"] or 1.0,
                    "peak_bytes": limits["max_peak_bytes"] or 1024, "param_bytes": limits["max_param_bytes"] or 128, "flops": 1})
    got = student.value("ev = Event('e', 'E', 'flops', 'min', **limits)\n[disqualify(r, ev) for r in records]",
                        limits=limits, records=records)
    for record, result in zip(records, got):
        expected = oracle_disqualify(record, limits)
        assert result == expected, f"record {record}, rules {limits}: expected {expected}, got {result}"


@pytest.mark.points(2)
def test_rank_event_random_tolerances(student, rng):
    cases = []
    for _ in range(4):
        records = records_for(rng, int(rng.integers(5, 16)), continuous=bool(rng.random() < 0.5))
        by = str(rng.choice(["latency_ms", "accuracy", "param_bytes"]))
        sense = "max" if by == "accuracy" else "min"
        tol = float(rng.choice([0.0, 0.05, 0.1, 0.3]))
        tie = [str(k) for k in rng.permutation(["flops", "param_bytes", "peak_bytes"])[: int(rng.integers(0, 3))]]
        cases.append((records, by, sense, tol, tie))
    got = student.value("[rank_event(r, Event('e', 'E', by, s, tolerance=t, tie_break=tb)) for r, by, s, t, tb in cases]",
                        cases=cases)
    for (records, by, sense, tol, tie), result in zip(cases, got):
        expected = oracle_rank(records, by, sense, tol, tie)
        assert result == expected, f"rank by {by} ({sense}), tolerance {tol}, ties {tie}: expected {expected}, got {result}"


@pytest.mark.points(2)
def test_leaderboard_random_class(student, rng):
    records = records_for(rng, int(rng.integers(6, 12)))
    entries = []
    for r in records:
        sid = r.pop("student")
        invalid = rng.random() < 0.25
        errors = [f"{sid}/submission.yaml: model: expected a mapping, got {i}" for i in range(int(rng.integers(1, 4)))] if invalid else []
        entries.append({"student": sid, "events": [str(e) for e in rng.permutation(["x", "y", "z"])[: int(rng.integers(0, 4))]],
                        "errors": errors, "record": None if invalid else r})
    spec = {"z": ("flops", "min", 0.0, ["param_bytes"], {"max_latency_ms": 1.5}),
            "x": ("latency_ms", "min", 0.1, ["flops"], {"min_accuracy": 0.9, "max_param_bytes": 256})}
    rows, dtypes = student.value(
        "import pandas as pd\n"
        "events = {n: Event(n, n, by, s, tolerance=t, tie_break=tb, **lim) for n, (by, s, t, tb, lim) in spec.items()}\n"
        "table = leaderboard(entries, events)\n"
        "([[None if pd.isna(v) else (v.item() if hasattr(v, 'item') else v) for v in row] "
        "for row in table.itertuples(index=False)], [str(table[c].dtype) for c in table.columns[:3]])",
        entries=entries, spec=spec)
    expected = []
    for name, (by, sense, tol, tie, limits) in spec.items():
        entered = [e for e in entries if name in e["events"] or not e["events"]]
        valid = [e for e in entered if not e["errors"]]
        ok = [e for e in valid if not oracle_disqualify(e["record"], limits)]
        order = oracle_rank([{**e["record"], "student": e["student"]} for e in ok], by, sense, tol, tie)
        expected += [(name, i + 1, s, "ok") for i, s in enumerate(order)]
        for e in sorted(valid, key=lambda e: e["student"]):
            if e["student"] not in order:
                broken = oracle_disqualify(e["record"], limits)
                expected.append((name, None, e["student"], "disqualified: " + "; ".join(k for k, _, _ in broken)))
        for e in sorted(entered, key=lambda e: e["student"]):
            if e["errors"]:
                more = f" (+{len(e['errors']) - 1} more)" if len(e["errors"]) > 1 else ""
                expected.append((name, None, e["student"], "invalid: " + e["errors"][0] + more))
    got = []
    for row in rows:
        status = row[8]
        if status.startswith("disqualified: "):  # keep the rule names of the reason
            status = "disqualified: " + "; ".join(part.split(" ")[0] for part in status[len("disqualified: "):].split("; "))
        got.append((row[0], row[1], row[2], status))
    assert got == expected, f"expected rows\n{expected}\ngot\n{got}"
    assert dtypes == ["str", "Int64", "str"] or dtypes == ["object", "Int64", "object"], f"column types {dtypes}"
