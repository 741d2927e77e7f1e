"""Hidden graded tests of module 07 (Optimizers): shapes, hyperparameters, gradients and the
pattern of missing gradients are drawn at grading time. Oracles: PyTorch's update rules in NumPy."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("07_optimizers"), pytest.mark.hidden]

RUN = """
params = [Parameter(a.copy()) for a in init]
opt = {cls}(params, **kw)
history = []
for step_grads in grads:
    for p, g in zip(params, step_grads):
        p.grad = g
    opt.step()
    history.append([p.data.copy() for p in params])
"""

GO = """
def go(opt, params, grads):
    out = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()
        out.append([p.data.copy() for p in params])
    return out
"""


def sgd_oracle(init, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    params, bufs, history = [np.asarray(p, np.float64).copy() for p in init], [None] * len(init), []
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            if g is None:
                continue
            g = np.asarray(g, np.float64)
            if weight_decay:
                g = g + weight_decay * params[i]
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = params[i] - lr * g
        history.append([p.copy() for p in params])
    return history


def adam_oracle(init, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    beta1, beta2 = betas
    params = [np.asarray(p, np.float64).copy() for p in init]
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    steps, history = [0] * len(init), []
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            if g is None:
                continue
            g = np.asarray(g, np.float64)
            if decoupled:
                params[i] = params[i] * (1 - lr * weight_decay)
            elif weight_decay:
                g = g + weight_decay * params[i]
            steps[i] += 1
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat, v_hat = m[i] / (1 - beta1 ** steps[i]), v[i] / (1 - beta2 ** steps[i])
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([p.copy() for p in params])
    return history


def random_problem(rng, steps=None, none_prob=0.25, scale=1.0):
    """1-3 parameters of random shapes; each step's gradient is None with probability none_prob."""
    shapes = [tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4)))) for _ in range(int(rng.integers(1, 4)))]
    steps = int(rng.integers(5, 10)) if steps is None else steps
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[None if rng.random() < none_prob else (scale * rng.standard_normal(s)).astype(np.float32) for s in shapes]
             for _ in range(steps)]
    return init, grads


def assert_history(got, expected):
    assert type(got) is list and len(got) == len(expected), "one list of parameter values per step"
    for got_step, expected_step in zip(got, expected):
        assert type(got_step) is list and len(got_step) == len(expected_step)
        for g, e in zip(got_step, expected_step):
            assert_array(g, e, dtype=np.float32, rtol=1e-6, atol=2e-6)


def u(rng, low, high):
    return float(rng.uniform(low, high))


@pytest.mark.points(2)
def test_sgd_random_configurations(student, rng):
    init, grads = random_problem(rng)
    configs = [
        {"lr": u(rng, 0.01, 0.3), "momentum": u(rng, 0.3, 0.95), "dampening": u(rng, 0.0, 0.5),
         "weight_decay": u(rng, 0.0, 0.1)},
        {"lr": u(rng, 0.01, 0.3), "momentum": u(rng, 0.3, 0.95), "weight_decay": u(rng, 0.0, 0.1), "nesterov": True},
        {"lr": u(rng, 0.01, 0.3), "weight_decay": u(rng, 0.0, 0.2)},
    ]
    for kw in configs:
        got = student.value(RUN.format(cls="SGD") + "history", init=init, grads=grads, kw=kw)
        assert_history(got, sgd_oracle(init, grads, **kw))


@pytest.mark.points(2)
def test_adam_random_configuration_with_per_parameter_steps(student, rng):
    init, grads = random_problem(rng, scale=u(rng, 0.01, 1.0))
    kw = {"lr": u(rng, 1e-3, 0.1), "betas": (u(rng, 0.5, 0.95), u(rng, 0.9, 0.9999)),
          "eps": float(10 ** rng.uniform(-4, -2)), "weight_decay": u(rng, 0.0, 0.2)}
    got, steps = student.value(
        RUN.format(cls="Adam") + "(history, [opt.state[i]['step'] if i in opt.state else 0 for i in range(len(params))])",
        init=init, grads=grads, kw=kw,
    )
    assert_history(got, adam_oracle(init, grads, **kw))
    assert steps == [sum(g[i] is not None for g in grads) for i in range(len(init))], \
        "each parameter counts only the steps in which it had a gradient"


@pytest.mark.points(2)
def test_adamw_random_configuration(student, rng):
    init, grads = random_problem(rng)
    kw = {"lr": u(rng, 1e-3, 0.1), "betas": (u(rng, 0.5, 0.95), u(rng, 0.9, 0.9999)),
          "eps": float(10 ** rng.uniform(-8, -3)), "weight_decay": u(rng, 0.01, 0.5)}
    got = student.value(RUN.format(cls="AdamW") + "history", init=init, grads=grads, kw=kw)
    assert_history(got, adam_oracle(init, grads, decoupled=True, **kw))


@pytest.mark.points(2)
def test_state_dict_round_trip_and_copies(student, rng):
    init, grads = random_problem(rng, steps=10, none_prob=0.2)
    cls, kw = [("SGD", {"lr": u(rng, 0.01, 0.2), "momentum": u(rng, 0.5, 0.95), "nesterov": True}),
               ("AdamW", {"lr": u(rng, 1e-3, 0.05), "betas": (u(rng, 0.7, 0.95), u(rng, 0.9, 0.999)),
                         "weight_decay": u(rng, 0.01, 0.3)})][
        int(rng.integers(2))]
    cut = int(rng.integers(3, 7))
    uninterrupted, first, second = student.value(
        RUN.format(cls=cls) + GO
        + "saved, values = opt.state_dict(), [p.data.copy() for p in params]\n"
        "uninterrupted = go(opt, params, later)\n"
        "resumed = []\n"
        "for _ in range(2):\n"
        "    params2 = [Parameter(v.copy()) for v in values]\n"
        f"    opt2 = {cls}(params2, lr=7.0)\n"
        "    opt2.load_state_dict(saved)\n"
        "    resumed.append(go(opt2, params2, later))\n"
        "(uninterrupted, resumed[0], resumed[1])",
        init=init, grads=grads[:cut], later=grads[cut:], kw=kw,
    )
    oracle = sgd_oracle if cls == "SGD" else (lambda *a, **k: adam_oracle(*a, decoupled=True, **k))
    expected = oracle(init, grads, **kw)[cut:]
    assert_history(uninterrupted, expected)
    assert_history(first, expected)
    assert_history(second, expected), "the state_dict must not change when the loaded optimizer steps"


@pytest.mark.points(2)
def test_in_place_float32_state_and_untouched_grads(student, rng):
    shape = tuple(int(d) for d in rng.integers(2, 6, size=2))
    w = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape)                           # float64 on purpose
    wd = u(rng, 0.01, 0.2)
    results = student.value(
        "out = []\n"
        "for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=wd),\n"
        "             lambda ps: Adam(ps, weight_decay=wd), lambda ps: AdamW(ps, weight_decay=wd)):\n"
        "    p = Parameter(w.copy())\n"
        "    array = p.data\n"
        "    grad = g.copy()\n"
        "    p.grad = grad\n"
        "    opt = make([p])\n"
        "    opt.step()\n"
        "    p.grad = Tensor(grad)\n"
        "    opt.step()\n"
        "    arrays = [v for v in opt.state[0].values() if isinstance(v, np.ndarray)]\n"
        "    out.append((p.data is array, str(p.data.dtype), bool(np.array_equal(grad, g)),\n"
        "                [str(v.dtype) for v in arrays], [tuple(int(d) for d in v.shape) for v in arrays],\n"
        "                any(np.shares_memory(v, grad) for v in arrays)))\n"
        "out",
        w=w, g=g, wd=wd,
    )
    for (same, dtype, grad_ok, state_dtypes, state_shapes, aliases), (name, copies) in zip(
            results, [("SGD", 1), ("Adam", 2), ("AdamW", 2)]):
        assert same is True and dtype == "float32", f"{name}: update p.data in place, keeping float32"
        assert grad_ok is True, f"{name}: step() must not modify p.grad"
        assert state_dtypes == ["float32"] * copies and state_shapes == [shape] * copies, \
            f"{name}: {copies} state array(s) in the parameter's dtype and shape"
        assert aliases is False, f"{name}: the state must not share memory with p.grad"


@pytest.mark.points(1)
def test_load_state_dict_rejects_mismatches_without_changes(student, rng):
    n = int(rng.integers(2, 6))
    outcomes = student.value(
        "a = SGD([Parameter(np.ones(n)), Parameter(np.ones(2))], lr=0.1, momentum=0.9)\n"
        "for p in a.params:\n"
        "    p.grad = np.ones(p.shape)\n"
        "a.step()\n"
        "saved = a.state_dict()\n"
        "out = []\n"
        "for params in ([Parameter(np.ones(n))], [Parameter(np.ones(n)), Parameter(np.ones(3))]):\n"
        "    b = SGD(params, lr=0.5, momentum=0.9)\n"
        "    try:\n"
        "        b.load_state_dict(saved)\n"
        "        out.append('no error')\n"
        "    except ValueError:\n"
        "        out.append(b.lr == 0.5 and b.state == {})\n"
        "out",
        n=n,
    )
    assert outcomes[0] is True, "a different number of parameters must raise ValueError and change nothing"
    assert outcomes[1] is True, "a state shape that differs from its parameter must raise ValueError and change nothing"


@pytest.mark.points(2)
def test_validation_accepts_edges_and_rejects_the_rest(student, rng):
    fine = student.value(
        "p = [Parameter(np.ones(2))]\n"
        "opts = [SGD(p, lr=0.0), SGD(p, lr=lr, momentum=0.9, nesterov=True), Adam(p, lr=0.0, betas=(0.0, 0.0)),\n"
        "        Adam(p, eps=0.0), AdamW(p, betas=(0.999, 0.9999), weight_decay=0.0)]\n"
        "[(o.lr, o.weight_decay) for o in opts]",
        lr=u(rng, 0.01, 1.0),
    )
    assert len(fine) == 5, "lr=0, beta=0, eps=0 and Nesterov with momentum are valid"
    bad = [("SGD", {"lr": 0.1, "momentum": u(rng, 0.1, 0.9), "dampening": u(rng, 0.1, 0.9), "nesterov": True}),
           ("SGD", {"lr": -u(rng, 1e-4, 1.0)}), ("Adam", {"betas": (u(rng, 0.1, 0.9), 1.0)}),
           ("AdamW", {"betas": (-u(rng, 0.01, 0.5), 0.999)}), ("AdamW", {"weight_decay": -u(rng, 1e-4, 1.0)}),
           ("AdamW", {"eps": -u(rng, 1e-9, 1e-3)})]
    for cls, kw in bad:
        with pytest.raises(StudentError) as err:
            student.value(f"{cls}([Parameter(np.ones(2))], **kw)", kw=kw)
        assert err.value.is_a("ValueError"), f"{cls} with {sorted(kw)} must raise ValueError"


@pytest.mark.points(1)
def test_step_after_zero_grad_changes_nothing(student, rng):
    init, grads = random_problem(rng, steps=3, none_prob=0.0)
    before, after, cleared = student.value(
        RUN.format(cls="AdamW")
        + "before = [p.data.copy() for p in params]\n"
        "opt.zero_grad()\n"
        "cleared = [p.grad is None for p in params]\n"
        "opt.step()\n"
        "(before, [p.data.copy() for p in params], cleared)",
        init=init, grads=grads, kw={"lr": 0.01, "weight_decay": u(rng, 0.1, 0.5)},
    )
    assert cleared == [True] * len(init)
    for b, a in zip(before, after):
        assert_array(a, b, dtype=np.float32, rtol=0, atol=0)


@pytest.mark.points(1)
def test_zero_grad_without_set_to_none_zeroes_in_place(student, rng):
    w, g = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    same, zeros, still_none, moved = student.value(
        "a, b = Parameter(w.copy()), Parameter(np.ones(2))\n"
        "opt = SGD([a, b], lr=0.1, momentum=0.9)\n"
        "a.grad = g.copy()\n"
        "opt.step()\n"
        "handle = a.grad\n"
        "opt.zero_grad(set_to_none=False)\n"
        "before = a.data.copy()\n"
        "opt.step()\n"
        "(a.grad is handle, a.grad, b.grad is None, a.data - before)",
        w=w, g=g,
    )
    assert same is True, "set_to_none=False zeroes the existing gradient array in place"
    assert_array(zeros, np.zeros(4), dtype=np.float32, rtol=0, atol=0)
    assert still_none is True, "a gradient that is None stays None"
    # A zero gradient is not "no gradient": momentum still moves the weight by -lr * 0.9 * buf.
    assert_array(moved, -0.1 * 0.9 * g, dtype=np.float32, rtol=1e-5, atol=1e-6)
