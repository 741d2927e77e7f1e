"""Public graded tests of module 20 (Capstone: the Torch Olympics).

Oracles are computed here: schema errors from defects injected into valid submissions (the
expected keys are known by construction), forward passes in NumPy (float64) from the
submitted arrays, accuracy with argmax, the latency median and its interval from the known
readings of a scripted clock (np.median and binomial ranks), FLOPs from the layer shapes,
rules and rankings by small reference implementations over rng-generated records.
"""

import math

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("20_capstone")

EVENT_NAMES = ["budget", "fastest", "smallest"]
FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"
ERRORS = "[e.as_tuple() for e in {call}]"


# ---------------------------------------------------------------- oracles and generators
def valid_meta(rng):
    widths = [64] + [int(w) for w in rng.integers(4, 40, size=int(rng.integers(0, 3)))] + [10]
    layers = []
    for i in range(len(widths) - 1):
        layers.append({"type": "Linear", "in_features": widths[i], "out_features": widths[i + 1]})
        if i < len(widths) - 2:
            layers.append({"type": str(rng.choice(["ReLU", "Tanh", "Sigmoid", "GELU"]))})
    events = [str(e) for e in rng.permutation(EVENT_NAMES)[: int(rng.integers(1, 4))]]
    return {"student": f"s{int(rng.integers(1000))}", "events": events, "description": "an MLP",
            "model": {"weights": "model.npz", "layers": layers}}


def ci_rank(n, confidence=0.95):
    best = 1
    for k in range(1, n // 2 + 1):
        if 2 * sum(math.comb(n, i) for i in range(k)) / 2**n <= 1 - confidence:
            best = k
    return best


def oracle_ci(samples):
    x = sorted(samples)
    k = ci_rank(len(x))
    return float(np.median(x)), x[k - 1], x[len(x) - k]


def oracle_disqualify(record, limits):
    rules = [("accuracy", "min_accuracy", "min"), ("latency_ms", "max_latency_ms", "max"),
             ("peak_bytes", "max_peak_bytes", "max"), ("param_bytes", "max_param_bytes", "max")]
    out = []
    for key, attribute, kind in rules:
        limit = limits.get(attribute)
        if limit is not None and ((record[key] < limit) if kind == "min" else (record[key] > limit)):
            out.append((key, record[key], limit))
    return out


def oracle_rank(records, rank_by, sense, tolerance, tie_break):
    """Sort, cut where neighbours are more than the tolerance apart, order each piece by the
    tie-breakers and the id."""
    sign = 1 if sense == "min" else -1
    tie = lambda r: tuple(r[k] for k in tie_break) + (r["student"],)  # noqa: E731
    ordered = sorted(records, key=lambda r: (sign * r[rank_by],) + tie(r))
    cuts = [0]
    for i in range(1, len(ordered)):
        a, b = ordered[i - 1][rank_by], ordered[i][rank_by]
        same = b <= a * (1 + tolerance) if sense == "min" else b >= a * (1 - tolerance)
        if not same:
            cuts.append(i)
    cuts.append(len(ordered))
    return [r["student"] for lo, hi in zip(cuts, cuts[1:]) for r in sorted(ordered[lo:hi], key=tie)]


def random_records(rng, count):
    return [{"student": f"st{i:02d}", "accuracy": float(rng.integers(90, 100)) / 100,
             "latency_ms": float(rng.choice([1.0, 1.1, 1.2, 1.5, 2.0, 2.3, 4.0])),
             "param_bytes": int(rng.choice([100, 200, 300])), "peak_bytes": int(rng.integers(1, 5)) * 1000,
             "flops": int(rng.choice([10, 20, 30]))} for i in rng.permutation(count)]


def forward_oracle(layers, arrays, x):
    h = x.astype(np.float64)
    for i, spec in enumerate(layers):
        kind = spec["type"]
        if kind == "Linear":
            w = arrays[f"{i}.weight"].astype(np.float64)
            if spec.get("dtype") == "int8":
                w = w * arrays[f"{i}.weight_scale"].astype(np.float64)[:, None]
            h = h @ w.T
            if spec.get("bias", True):
                h = h + arrays[f"{i}.bias"].astype(np.float64)
        elif kind == "ReLU":
            h = np.maximum(h, 0)
        elif kind == "Tanh":
            h = np.tanh(h)
        elif kind == "Sigmoid":
            h = 1 / (1 + np.exp(-h))
        elif kind == "Softmax":
            e = np.exp(h - h.max(axis=-1, keepdims=True))
            h = e / e.sum(axis=-1, keepdims=True)
    return h


def random_model(rng, dtypes=("float32", "float16", "int8")):
    widths = [64] + [int(w) for w in rng.integers(3, 24, size=int(rng.integers(1, 3)))] + [10]
    layers, arrays = [], {}
    for j in range(len(widths) - 1):
        i, dtype, bias = len(layers), str(rng.choice(dtypes)), bool(rng.integers(0, 2))
        layers.append({"type": "Linear", "in_features": widths[j], "out_features": widths[j + 1], "bias": bias,
                       "dtype": dtype})
        w = rng.standard_normal((widths[j + 1], widths[j])) * 0.3
        if dtype == "int8":
            arrays[f"{i}.weight"] = rng.integers(-127, 128, size=w.shape).astype(np.int8)
            arrays[f"{i}.weight_scale"] = rng.uniform(0.001, 0.01, size=widths[j + 1]).astype(np.float32)
        else:
            arrays[f"{i}.weight"] = w.astype(dtype)
        if bias:
            arrays[f"{i}.bias"] = rng.standard_normal(widths[j + 1]).astype("float32" if dtype == "int8" else dtype)
        if j < len(widths) - 2:
            layers.append({"type": str(rng.choice(["ReLU", "Tanh", "Sigmoid"]))})
    if rng.integers(0, 2):
        layers.append({"type": "Softmax"})
    return layers, arrays


# ---------------------------------------------------------------- validate_metadata
@pytest.mark.points(2)
def test_validate_metadata_accepts_valid_and_names_each_problem(student, rng):
    meta = valid_meta(rng)
    bad = dict(meta)
    typo = str(rng.choice(["evnets", "studnet", "weights", "descripton"]))
    bad[typo] = "oops"
    del bad["description"]
    wrong = int(rng.integers(0, len(meta["events"])))
    bad["events"] = list(meta["events"])
    bad["events"][wrong] = bad["events"][wrong] + "s"
    bad["model"] = {**meta["model"], "weights": "../grades.csv"}
    ok, errors = student.value(f"(validate_metadata(good, file='x/submission.yaml'), "
                               f"{ERRORS.format(call='validate_metadata(bad, file=name)')})",
                               good=meta, bad=bad, name="x/submission.yaml")
    assert_exact(ok, [])
    assert all(type(e) is tuple and e[0] == "x/submission.yaml" for e in errors), \
        f"each error is a SubmissionError with the file it came from, got {errors}"
    keys = sorted(e[1] for e in errors)
    assert keys == sorted([typo, "description", f"events[{wrong}]", "model.weights"]), \
        f"expected one error per problem at keys {sorted([typo, 'description', f'events[{wrong}]', 'model.weights'])}, got {keys}"
    shown = {e[1]: e[3] for e in errors}
    assert repr(bad["events"][wrong]) in shown[f"events[{wrong}]"], "an error shows what came in"


@pytest.mark.points(1)
def test_validate_metadata_types_and_missing_keys(student, rng):
    meta = valid_meta(rng)
    cases = [
        (["not", "a", "mapping"], ["(top level)"]),
        ({}, ["description", "events", "model", "student"]),
        ({**meta, "student": "bad id!"}, ["student"]),
        ({**meta, "team": "ada"}, ["team"]),
        ({**meta, "events": []}, ["events"]),
        ({**meta, "events": ["fastest", "fastest"]}, ["events[1]"]),
        ({**meta, "model": {"layers": meta["model"]["layers"], "extra": 1}}, ["model.extra", "model.weights"]),
        ({**meta, "model": {"weights": "model.npz", "layers": []}}, ["model.layers"]),
    ]
    got = student.value("[sorted(e.key for e in validate_metadata(m)) for m in metas]", metas=[c[0] for c in cases])
    for (meta_case, expected), keys in zip(cases, got):
        assert keys == expected, f"validate_metadata({meta_case!r:.120}): expected errors at {expected}, got {keys}"


# ---------------------------------------------------------------- validate_layers
@pytest.mark.points(2)
def test_validate_layers_whitelist_and_width_chain(student, rng):
    layers = valid_meta(rng)["model"]["layers"]
    hidden = int(rng.integers(5, 30))
    chain = [{"type": "Linear", "in_features": 64, "out_features": hidden}, {"type": "ReLU"},
             {"type": "Linear", "in_features": hidden, "out_features": 10}]
    cases = [
        (layers, []),
        ([chain[0], {"type": "Conv2d"}, *chain[1:]], ["model.layers[1].type"]),
        ([{**chain[0], "activation": "relu"}, *chain[1:]], ["model.layers[0].activation"]),
        ([chain[0], chain[1], {**chain[2], "in_features": hidden + 1}], ["model.layers[2].in_features"]),
        ([chain[0], chain[1], {**chain[2], "out_features": 9}], ["model.layers[2].out_features"]),
        ([{**chain[0], "out_features": True}, *chain[1:]], ["model.layers[0].out_features", "model.layers[2].in_features"]),
        ([chain[0], {"type": "Dropout", "p": 1.0}, *chain[1:]], ["model.layers[1].p"]),
        ([{**chain[0], "dtype": "int4"}, *chain[1:]], ["model.layers[0].dtype"]),
        ([{"type": "ReLU"}], ["model.layers"]),
        ([{"type": "Linear", "in_features": 64}], ["model.layers", "model.layers[0].out_features"]),
    ]
    got = student.value("[sorted(e.key for e in validate_layers(c, file='f.yaml')) for c in cases]",
                        cases=[c[0] for c in cases])
    for (spec, expected), keys in zip(cases, got):
        assert keys == sorted(expected), f"validate_layers({spec!r:.160}): expected errors at {sorted(expected)}, got {keys}"


# ---------------------------------------------------------------- build_model
@pytest.mark.points(3)
def test_build_model_matches_a_numpy_forward(student, rng):
    layers, arrays = random_model(rng)
    x = rng.random((int(rng.integers(3, 12)), 64)).astype(np.float32)
    got, training = student.value("m = build_model(layers, arrays)\n(m(Tensor(x)).data, m.training)",
                                  layers=layers, arrays=arrays, x=x)
    assert_array(got, forward_oracle(layers, arrays, x), rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert training is False, "build_model returns the model in evaluation mode"


@pytest.mark.points(2)
def test_build_model_refuses_arrays_that_do_not_match(student, rng):
    layers, arrays = random_model(rng, dtypes=("float32",))
    first = "0.weight"
    shape = arrays[first].shape
    cases = [
        ({k: v for k, v in arrays.items() if k != first}, first),
        ({**arrays, first: arrays[first].astype(np.float64)}, first),
        ({**arrays, first: arrays[first][:, :-1]}, first),
        ({**arrays, first: np.full(shape, np.nan, np.float32)}, first),
        ({**arrays, "9.extra": np.zeros(3, np.float32)}, "9.extra"),
    ]
    got = student.value(
        "out = []\n"
        "for a in cases:\n"
        "    try:\n"
        "        build_model(layers, a, file='s/model.npz')\n"
        "        out.append(None)\n"
        "    except SubmissionError as err:\n"
        "        out.append((err.file, err.key))\n"
        "out", layers=layers, cases=[c[0] for c in cases])
    for (_, key), result in zip(cases, got):
        assert result == ("s/model.npz", key), f"expected a SubmissionError at {key!r} of s/model.npz, got {result}"


# ---------------------------------------------------------------- score_model
@pytest.mark.points(3)
def test_score_model_measures_with_a_scripted_clock(student, rng):
    n, hidden = int(rng.integers(20, 60)), int(rng.integers(4, 20))
    x = rng.random((n, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=n)
    w1, b1 = rng.standard_normal((hidden, 64)).astype(np.float32), rng.standard_normal(hidden).astype(np.float32)
    w2, b2 = rng.standard_normal((10, hidden)).astype(np.float32), rng.standard_normal(10).astype(np.float32)
    warmup, repeats = int(rng.integers(1, 4)), int(rng.integers(7, 15))
    ts = [float(t) for t in np.cumsum(rng.uniform(0.001, 0.01, size=2 * repeats))]
    pbytes = int(rng.integers(100, 10**6))
    record = student.value(
        FAKE_CLOCK +
        "m = Sequential(Linear(64, hidden, rng=0), ReLU(), Linear(hidden, 10, rng=1))\n"
        "m.load_state_dict({'0.weight': w1, '0.bias': b1, '2.weight': w2, '2.bias': b2})\n"
        "score_model(m, x, y, pbytes, warmup=w, repeats=r, clock=clock)",
        ts=ts, hidden=hidden, w1=w1, b1=b1, w2=w2, b2=b2, x=x, y=y, pbytes=pbytes, w=warmup, r=repeats)
    logits = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    samples = [ts[2 * i + 1] - ts[2 * i] for i in range(repeats)]
    median, low, high = oracle_ci(samples)
    assert type(record) is dict and set(record) == {"accuracy", "latency_ms", "latency_low_ms", "latency_high_ms",
                                                    "param_bytes", "peak_bytes", "flops"}, f"got {record!r:.300}"
    assert_exact(record["accuracy"], float(np.mean(logits.argmax(axis=1) == y)))
    for key, value in (("latency_ms", median), ("latency_low_ms", low), ("latency_high_ms", high)):
        assert type(record[key]) is float and record[key] == pytest.approx(value * 1e3, rel=1e-9), \
            f"{key}: expected {value * 1e3} (ms, from the clock's readings), got {record[key]}"
    assert_exact(record["flops"], 2 * n * 64 * hidden + n * hidden + n * hidden + 2 * n * hidden * 10 + n * 10)
    assert_exact(record["param_bytes"], pbytes)
    assert type(record["peak_bytes"]) is int and record["peak_bytes"] >= n * hidden * 4, \
        f"a forward pass allocates at least its ({n}, {hidden}) float32 activation: peak_bytes {record['peak_bytes']}"


# ---------------------------------------------------------------- disqualify
@pytest.mark.points(1)
def test_disqualify_lists_the_broken_rules(student, rng):
    records = random_records(rng, 8)
    limits = {"min_accuracy": float(rng.choice([0.93, 0.95])), "max_latency_ms": float(rng.choice([1.2, 2.0])),
              "max_peak_bytes": int(rng.choice([2000, 3000])), "max_param_bytes": None}
    got = student.value("ev = Event('e', 'E', 'accuracy', 'max', **limits)\n[disqualify(r, ev) for r in records]",
                        limits=limits, records=records)
    for record, result in zip(records, got):
        assert result == oracle_disqualify(record, limits), \
            f"record {record}, rules {limits}: expected {oracle_disqualify(record, limits)}, got {result}"


# ---------------------------------------------------------------- rank_event
@pytest.mark.points(2)
def test_rank_event_groups_within_the_tolerance(student, rng):
    records = random_records(rng, int(rng.integers(8, 14)))
    settings = [("latency_ms", "min", 0.25, ["flops", "param_bytes"]), ("param_bytes", "min", 0.0, ["flops"]),
                ("accuracy", "max", 0.0, ["param_bytes", "flops"])]
    got = student.value("[rank_event(records, Event('e', 'E', by, sense, tolerance=tol, tie_break=tb)) "
                        "for by, sense, tol, tb in settings]", records=records, settings=settings)
    for (by, sense, tol, tb), result in zip(settings, got):
        expected = oracle_rank(records, by, sense, tol, tb)
        assert result == expected, f"ranking by {by} ({sense}, tolerance {tol}, ties by {tb}): expected {expected}, got {result}"


# ---------------------------------------------------------------- leaderboard
LEADERBOARD = """
import pandas as pd
table = leaderboard(entries, events)
([[None if pd.isna(v) else (v.item() if hasattr(v, 'item') else v) for v in row] for row in table.itertuples(index=False)],
 list(table.columns), [str(table[c].dtype) for c in ['rank', 'param_bytes', 'peak_bytes', 'flops']])
"""


def leaderboard_oracle(entries, events):
    rows = []
    for name, (by, sense, tol, tb, limits) in events.items():
        entered = [e for e in entries if name in e["events"] or not e["events"]]
        valid = [e for e in entered if not e["errors"]]
        ok = [e for e in valid if not oracle_disqualify(e["record"], limits)]
        order = oracle_rank([{**e["record"], "student": e["student"]} for e in ok], by, sense, tol, tb)
        rows += [[name, i + 1, s, "ok"] for i, s in enumerate(order)]
        rows += [[name, None, e["student"], "disqualified"] for e in sorted(valid, key=lambda e: e["student"])
                 if e["student"] not in order]
        rows += [[name, None, e["student"], "invalid"] for e in sorted(entered, key=lambda e: e["student"]) if e["errors"]]
    return rows


def random_entries(rng, count):
    entries = []
    for record in random_records(rng, count):
        events = [str(e) for e in rng.permutation(["a", "b"])[: int(rng.integers(0, 3))]]
        broken = rng.random() < 0.2
        entries.append({"student": record.pop("student"), "events": events,
                        "errors": ["s/submission.yaml: events: expected a list, got 1", "second"][: int(rng.integers(1, 3))]
                        if broken else [], "record": None if broken else record})
    return entries


@pytest.mark.points(2)
def test_leaderboard_rows_order_and_status(student, rng):
    entries = random_entries(rng, int(rng.integers(8, 12)))
    events = {"a": ("latency_ms", "min", 0.25, ["flops", "param_bytes"], {"min_accuracy": 0.95}),
              "b": ("accuracy", "max", 0.0, ["param_bytes"], {"max_peak_bytes": 3000})}
    code = ("events = {n: Event(n, n.upper(), by, sense, tolerance=tol, tie_break=tb, **lim) "
            "for n, (by, sense, tol, tb, lim) in spec.items()}\n" + LEADERBOARD)
    rows, columns, dtypes = student.value(code, entries=entries, spec=events)
    assert columns == ["event", "rank", "student", "accuracy", "latency_ms", "param_bytes", "peak_bytes", "flops", "status"]
    assert dtypes == ["Int64"] * 4, f"rank, param_bytes, peak_bytes and flops are nullable Int64 columns, got {dtypes}"
    expected = leaderboard_oracle(entries, events)
    got = [[r[0], r[1], r[2], r[8].split(":")[0]] for r in rows]
    assert got == expected, f"expected rows (event, rank, student, status)\n{expected}\ngot\n{got}"
    records = {e["student"]: e for e in entries}
    for row in rows:
        entry = records[row[2]]
        metrics = [None] * 5 if entry["errors"] else [entry["record"][k] for k in
                                                       ("accuracy", "latency_ms", "param_bytes", "peak_bytes", "flops")]
        assert row[3:8] == metrics, f"{row[2]}: expected the measurements {metrics}, got {row[3:8]}"
        if entry["errors"]:
            more = f" (+{len(entry['errors']) - 1} more)" if len(entry["errors"]) > 1 else ""
            assert row[8] == "invalid: " + entry["errors"][0] + more, f"status of an invalid entry: got {row[8]!r}"
