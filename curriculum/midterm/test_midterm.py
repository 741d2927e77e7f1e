"""Public graded tests of the midterm project (build and train a CNN). Run with: pytest --module midterm

The data are made here, in the grader: the bundled digits split with a seed, images as float32
(N, 1, 8, 8). The kernel receives the training images and labels and the held-out *images*, never
the held-out labels; it sends back plain data (the history, the conv weights, the predictions,
the names of the loaded modules), and every verdict (accuracy, time, types) is decided here.

Training is the expensive part, so each (submission, model, seed) is trained once: `training_run`
caches the plain results of the whole run, the errors included, for the other tests of the same
submission. The hidden tests (test_midterm_hidden.py) share this cache.
"""

from __future__ import annotations

import math
import time
from string import Template

import numpy as np
import pytest

from tinytorch.datasets import load_digits, train_test_split

pytestmark = pytest.mark.module("midterm")

PUBLIC_SEED = 0
FORBIDDEN = ("torch", "tensorflow", "jax", "sklearn", "keras")

# --- the grader's data --------------------------------------------------------------------------


def split(seed):
    """(X_train, X_test, y_train, y_test) of the digits for `seed`, as the notebook makes them:
    X float32 (N, 1, 8, 8) in [0, 1], y int64; 1,437 training and 360 held-out images."""
    images, labels = load_digits(flatten=False)
    X = np.ascontiguousarray(images[:, None, :, :], dtype=np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, labels.astype(np.int64), test_size=0.2, seed=seed)
    return X_train, X_test, y_train, y_test


# --- one training run per (submission, model, seed) ------------------------------------------

BUILDERS = {"cnn": "build_model", "mlp": "build_mlp"}

# Defines, in the kernel, a walk over the registered sub-modules (Module._modules) of a model.
WALK = """
import sys as __sys
import numpy as __np
from tinytorch.core.layers import Module as __Module
try:
    from tinytorch.core.spatial import Conv2d as __Conv2d
except Exception:          # part A only: no Module 09 yet, so no Conv2d in the model
    __Conv2d = ()
def __walk(module, seen=None):
    seen = set() if seen is None else seen
    if id(module) in seen:
        return []
    seen.add(id(module))
    found = [module]
    for child in dict(getattr(module, "_modules", None) or {}).values():
        found += __walk(child, seen)
    return found
def __convs(model):
    return [m for m in __walk(model) if isinstance(m, __Conv2d)] if isinstance(model, __Module) else []
"""

BUILD = Template(WALK + """
__model = $builder(__np.random.default_rng(seed))
__ns = get_ipython().user_ns
__ns["$model"], __ns["$data"] = __model, (X_train, y_train)
__params = __model.parameters() if isinstance(__model, __Module) else []
{
    "mro": [c.__name__ for c in type(__model).__mro__],
    "params": [([c.__name__ for c in type(p).__mro__], type(getattr(p, "data", None)).__name__,
                str(getattr(getattr(p, "data", None), "dtype", ""))) for p in __params],
    "conv": [__np.array(m.weight.data, copy=True) for m in __convs(__model)],
}
""")

TRAIN = Template("""
import time as __time
__cpu = __time.process_time()
__history = train($model, $data[0], $data[1], seed)
get_ipython().user_ns["$history"] = __history
__time.process_time() - __cpu
""")

AFTER = Template(WALK + """
{
    "conv": [__np.array(m.weight.data, copy=True) for m in __convs($model)],
    "modules": sorted({name.split(".")[0] for name in list(__sys.modules)}),
}
""")

_RUNS: dict = {}


class Run:
    """The plain results of building, training and evaluating one model for one seed. Each step
    holds its value or the exception it raised; `get` returns the value or raises the exception
    (StudentError, KernelTimeout...: the plugin reports it as the student's failure)."""

    def __init__(self, kind, seed):
        self.kind, self.seed = kind, seed
        self.steps = {}

    def record(self, name, fn):
        try:
            self.steps[name] = fn()
        except Exception as err:   # the student's error, a timeout, non-plain data: a result to report
            self.steps[name] = err
        return not isinstance(self.steps[name], Exception)

    def get(self, name):
        value = self.steps[name]
        if isinstance(value, Exception):
            raise value.with_traceback(None)
        return value

    def accuracy(self):
        """Held-out accuracy of the model's predictions, computed here (a float in [0, 1]). Any
        numeric array of shape (N,) is scored: the exact dtype is test_predict_contract's business."""
        pred, n = self.get("predictions"), len(self.y_test)
        if type(pred) is not np.ndarray or pred.shape != (n,):
            shape = pred.shape if type(pred) is np.ndarray else type(pred).__name__
            raise AssertionError(f"predict must return a NumPy array of shape ({n},) (one class index per "
                                 f"image), got {shape}")
        return float(np.mean(pred == self.y_test))


def training_run(student, kind, seed):
    """Build, train (timed here, with the wall clock) and evaluate `kind` ("cnn": build_model,
    "mlp": build_mlp) on the split of `seed`, once per submission; later calls reuse the results."""
    key = (getattr(student, "label", None) or id(student), kind, int(seed))
    if key in _RUNS:
        return _RUNS[key]
    for old in [k for k in _RUNS if k[0] != key[0]]:   # a submission's tests run together: drop the previous one's
        del _RUNS[old]
    run = _RUNS[key] = Run(kind, seed)
    X_train, X_test, y_train, run.y_test = split(seed)
    names = {"model": f"__midterm_{kind}_{seed}", "data": f"__midterm_data_{kind}_{seed}",
             "history": f"__midterm_history_{kind}_{seed}"}
    build = BUILD.substitute(builder=BUILDERS[kind], **names)
    if not run.record("build", lambda: student.value(build, seed=int(seed), X_train=X_train, y_train=y_train)):
        for step in ("train", "seconds", "history", "after", "predictions"):
            run.steps[step] = run.steps["build"]
        return run

    def timed_training():
        start = time.perf_counter()
        cpu = student.value(TRAIN.substitute(**names), seed=int(seed))
        run.steps["seconds"] = time.perf_counter() - start
        return cpu

    if not run.record("train", timed_training):
        for step in ("seconds", "history", "after", "predictions"):
            run.steps[step] = run.steps["train"]
        return run
    run.record("history", lambda: student.value(names["history"]))
    run.record("after", lambda: student.value(AFTER.substitute(**names)))
    run.record("predictions", lambda: student.value(f"predict({names['model']}, X_test)", X_test=X_test))
    return run


# --- checks shared with the hidden tests ------------------------------------------------------

def check_predictions(pred, y_true):
    """The predictions must be int64 class indices of shape (N,); returns the accuracy."""
    n = len(y_true)
    if type(pred) is not np.ndarray:
        raise AssertionError(f"predict must return a NumPy array, got a {type(pred).__name__}")
    if pred.dtype != np.int64 or pred.shape != (n,):
        raise AssertionError(f"predict must return int64 class indices of shape ({n},), "
                             f"got dtype {pred.dtype} and shape {pred.shape}")
    if n and (pred.min() < 0 or pred.max() > 9):
        raise AssertionError(f"predict must return class indices 0..9, got values from {pred.min()} to {pred.max()}")
    return float(np.mean(pred == y_true))


def check_history(history):
    """train's result: a dict of plain numbers with "epochs" (int >= 1) and "loss" (one float per epoch)."""
    if type(history) is not dict:
        raise AssertionError(f"train must return a dict (its history), got a {type(history).__name__}")
    for key in ("epochs", "loss"):
        if key not in history:
            raise AssertionError(f"train's history has no {key!r} key; it has {sorted(history)}")
    epochs, loss = history["epochs"], history["loss"]
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise AssertionError(f"history['epochs'] must be an int >= 1, got {epochs!r:.100}")
    if type(loss) not in (list, tuple) or len(loss) != epochs:
        raise AssertionError(f"history['loss'] must be a list of one float per epoch ({epochs}), got {loss!r:.200}")
    if not all(isinstance(v, (float, np.floating)) and math.isfinite(v) for v in loss):
        raise AssertionError(f"history['loss'] must hold finite floats (the mean loss of each epoch), got {loss!r:.200}")
    for key, value in history.items():
        values = value if type(value) in (list, tuple) else [value]
        if not all(v is None or isinstance(v, (int, float, np.integer, np.floating)) for v in values):
            raise AssertionError(f"train's history must hold plain numbers: history[{key!r}] is not a number "
                                 f"or a list of numbers: {value!r:.200}")


def check_trained_conv(run):
    """At least one Conv2d whose weights changed during training."""
    before, after = run.get("build")["conv"], run.get("after")["conv"]
    if not before:
        raise AssertionError("the model has no Conv2d (from tinytorch.core.spatial) among its registered "
                             "sub-modules: build_model must return a CNN")
    if len(after) != len(before):
        raise AssertionError(f"the model had {len(before)} Conv2d layers before training and {len(after)} after")
    for w0, w1 in zip(before, after):
        if type(w0) is not np.ndarray or type(w1) is not np.ndarray or w0.ndim != 4 or w0.shape != w1.shape:
            raise AssertionError("a Conv2d weight must be a 4-d array (out, in, kh, kw) that keeps its shape")
    changed = [float(np.max(np.abs(w1.astype(np.float64) - w0))) for w0, w1 in zip(before, after) if w0.size]
    if not any(c > 1e-6 for c in changed):
        raise AssertionError(f"no Conv2d weight changed during training (largest change per layer: {changed}); "
                             f"does train update every parameter of the model?")


def loaded_libraries(run):
    modules = run.get("after")["modules"]
    if type(modules) is not list or not all(type(m) is str for m in modules):
        raise AssertionError("the kernel did not return the list of loaded modules")
    return sorted(set(modules) & set(FORBIDDEN))


# --- tests ------------------------------------------------------------------------------------

@pytest.mark.points(3)
def test_build_model_contract(student):
    """build_model(rng) returns a tinytorch Module whose parameters() are float32 Parameters."""
    build = training_run(student, "cnn", PUBLIC_SEED).get("build")
    assert "Module" in build["mro"], f"build_model must return a tinytorch Module, got a {build['mro'][0]}"
    assert build["params"], "the model has no parameters: parameters() returned an empty list"
    for mro, kind, dtype in build["params"]:
        assert "Parameter" in mro, f"parameters() must return Parameters, got a {mro[0]}"
        assert kind == "ndarray" and dtype == "float32", f"every parameter must hold a float32 array, got {kind} {dtype}"


@pytest.mark.points(2)
def test_train_contract(student):
    """train returns its history: a dict of plain numbers with "epochs" and one "loss" per epoch."""
    run = training_run(student, "cnn", PUBLIC_SEED)
    run.get("train")
    check_history(run.get("history"))


@pytest.mark.points(2)
def test_predict_contract(student):
    """predict returns int64 class indices (N,), computed by the model: untrained, it is near chance."""
    run = training_run(student, "cnn", PUBLIC_SEED)
    check_predictions(run.get("predictions"), run.y_test)
    _, X_test, _, y_test = split(PUBLIC_SEED)
    untrained = student.value("import numpy as __np\npredict(build_model(__np.random.default_rng(seed)), X_test)",
                              seed=PUBLIC_SEED + 12345, X_test=X_test)
    chance = check_predictions(untrained, y_test)
    assert chance < 0.5, (f"an untrained model from build_model scored {chance:.1%}: build_model must return a "
                          f"fresh model and predict must use the model it is given")


@pytest.mark.points(6)
def test_model_is_a_trained_cnn(student):
    """At least one Conv2d of the model (a registered sub-module) has weights that training changed."""
    check_trained_conv(training_run(student, "cnn", PUBLIC_SEED))


@pytest.mark.points(6)
def test_only_tinytorch_and_numpy(student):
    """After training, none of torch, tensorflow, jax, sklearn, keras is loaded in the kernel."""
    run = training_run(student, "cnn", PUBLIC_SEED)
    run.get("train")
    found = loaded_libraries(run)
    assert not found, f"the project must use only TinyTorch and NumPy; loaded after training: {found}"


@pytest.mark.points(8)
def test_public_split_accuracy_at_least_95(student):
    """Trained on the 1,437 training images of seed 0, the model classifies 95% of the 360 held-out ones."""
    run = training_run(student, "cnn", PUBLIC_SEED)
    check_trained_conv(run)          # the accuracy of a CNN: an MLP handed in as build_model earns none
    acc = run.accuracy()
    assert acc >= 0.95, (f"held-out accuracy {acc:.1%} on the seed-{PUBLIC_SEED} split ({len(run.y_test)} images) "
                         f"is below 95% (training took {run.get('seconds'):.1f} s)")
