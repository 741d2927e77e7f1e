"""Public graded tests of module 07 (Optimizers).

The oracles are PyTorch's documented update rules (torch.optim.SGD, Adam, AdamW) written out in
NumPy below and computed in float64; the student's optimizers update float32 parameters in
place. Gradients are set by hand (p.grad = a NumPy array of p's shape, or None): no autograd.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("07_optimizers")

# Runs an optimizer in the student's kernel: `init` is a list of float32 arrays, `grads` a list
# (one per step) of lists (one per parameter) of arrays or None, `kw` the keyword arguments.
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


def sgd_oracle(init, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD: parameter values after each step (grads[t][i] None: parameter skipped)."""
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
    """torch.optim.Adam (decoupled=False: L2 in the gradient) or torch.optim.AdamW (decoupled)."""
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


def problem(rng, shapes=((3, 4), (5,)), steps=5):
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]
    return init, grads


def run(student, cls, init, grads, kw):
    return student.value(RUN.format(cls=cls) + "history", init=init, grads=grads, kw=kw)


def assert_history(got, expected):
    assert type(got) is list and len(got) == len(expected), "one list of parameter values per step"
    for step, (got_step, expected_step) in enumerate(zip(got, expected), start=1):
        for index, (g, e) in enumerate(zip(got_step, expected_step)):
            try:
                assert_array(g, e, dtype=np.float32, rtol=1e-6, atol=2e-6)
            except AssertionError as err:
                raise AssertionError(f"parameter {index} after step {step}: {err}") from None


@pytest.mark.points(1)
def test_sgd_plain_step(student, rng):
    init, grads = problem(rng)
    kw = {"lr": 0.1}
    assert_history(run(student, "SGD", init, grads, kw), sgd_oracle(init, grads, **kw))


@pytest.mark.points(2)
def test_sgd_momentum_and_dampening(student, rng):
    init, grads = problem(rng, steps=6)
    for kw in ({"lr": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}):
        assert_history(run(student, "SGD", init, grads, kw), sgd_oracle(init, grads, **kw))


@pytest.mark.points(2)
def test_sgd_nesterov_and_weight_decay(student, rng):
    init, grads = problem(rng, steps=6)
    for kw in ({"lr": 0.1, "weight_decay": 0.05},
               {"lr": 0.03, "momentum": 0.9, "nesterov": True},
               {"lr": 0.03, "momentum": 0.7, "weight_decay": 0.1, "nesterov": True}):
        assert_history(run(student, "SGD", init, grads, kw), sgd_oracle(init, grads, **kw))


@pytest.mark.points(2)
def test_adam_matches_pytorch_rule(student, rng):
    init, grads = problem(rng, steps=8)
    for kw in ({"lr": 0.01}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3}):
        assert_history(run(student, "Adam", init, grads, kw), adam_oracle(init, grads, **kw))


@pytest.mark.points(2)
def test_adam_l2_and_adamw_decoupled_weight_decay(student, rng):
    init, grads = problem(rng, steps=6)
    kw = {"lr": 0.02, "weight_decay": 0.2}
    assert_history(run(student, "Adam", init, grads, kw), adam_oracle(init, grads, **kw))
    assert_history(run(student, "AdamW", init, grads, kw), adam_oracle(init, grads, decoupled=True, **kw))
    default = adam_oracle(init, grads, lr=0.02, weight_decay=1e-2, decoupled=True)
    assert_history(run(student, "AdamW", init, grads, {"lr": 0.02}), default)


@pytest.mark.points(1)
def test_zero_grad_sets_none_and_none_grads_are_skipped(student, rng):
    init, grads = problem(rng, steps=3)
    grads = [[g, None] for g, _ in grads]                    # parameter 1 never has a gradient
    got, cleared, state_keys = student.value(
        RUN.format(cls="SGD")
        + "opt.zero_grad()\n"
        "(history, [p.grad is None for p in params], sorted(int(i) for i in opt.state))",
        init=init, grads=grads, kw={"lr": 0.1, "momentum": 0.9},
    )
    assert_history(got, sgd_oracle(init, grads, lr=0.1, momentum=0.9))
    assert cleared == [True, True], "zero_grad() must set every .grad to None"
    assert state_keys == [0], "a parameter without gradient gets no state"


@pytest.mark.points(2)
def test_state_dict_round_trip_resumes_exactly(student, rng):
    init, grads = problem(rng, steps=8)
    kw = {"lr": 0.05, "betas": (0.8, 0.99)}
    uninterrupted, resumed, steps, lr = student.value(
        RUN.format(cls="Adam")
        + "saved, values = opt.state_dict(), [p.data.copy() for p in params]\n"
        "def go(opt, params):\n"
        "    out = []\n"
        "    for step_grads in later:\n"
        "        for p, g in zip(params, step_grads):\n"
        "            p.grad = g\n"
        "        opt.step()\n"
        "        out.append([p.data.copy() for p in params])\n"
        "    return out\n"
        "uninterrupted = go(opt, params)\n"
        "params2 = [Parameter(v) for v in values]\n"
        "opt2 = Adam(params2, lr=1.0)\n"
        "opt2.load_state_dict(saved)\n"
        "resumed = go(opt2, params2)\n"
        "(uninterrupted, resumed, [opt2.state[i]['step'] for i in range(len(params2))], opt2.lr)",
        init=init, grads=grads[:4], later=grads[4:], kw=kw,
    )
    expected = adam_oracle(init, grads, **kw)[4:]
    assert_history(uninterrupted, expected)
    assert_history(resumed, expected)
    assert steps == [8, 8], "the step counts must be saved and restored"
    assert lr == 0.05, "load_state_dict restores the hyperparameters"


@pytest.mark.points(2)
def test_hyperparameters_are_validated(student):
    bad = [("SGD", {"lr": -0.1}), ("SGD", {"lr": 0.1, "momentum": -0.9}), ("SGD", {"lr": 0.1, "weight_decay": -1.0}),
           ("SGD", {"lr": 0.1, "nesterov": True}), ("Adam", {"lr": -1e-3}), ("Adam", {"betas": (1.0, 0.999)}),
           ("Adam", {"betas": (0.9, 1.2)}), ("Adam", {"eps": -1e-8}), ("Adam", {"weight_decay": -0.01})]
    for cls, kw in bad:
        with pytest.raises(StudentError) as err:
            student.value(f"{cls}([Parameter(np.ones(2))], **kw)", kw=kw)
        assert err.value.is_a("ValueError"), f"{cls}(params, **{kw}) must raise ValueError"


@pytest.mark.points(1)
def test_params_must_be_an_iterable_of_tensors(student):
    with pytest.raises(StudentError) as err:
        student.value("SGD(Parameter(np.ones(3)), lr=0.1)")
    assert err.value.is_a("TypeError"), "a single Tensor instead of a list must raise TypeError"
    with pytest.raises(StudentError) as err:
        student.value("Adam([])")
    assert err.value.is_a("ValueError"), "an empty parameter list must raise ValueError"
    count, first_is_w = student.value(
        "w = Parameter(np.ones(3))\n"
        "opt = SGD((p for p in [w, Parameter(np.ones(2)), w]), lr=0.1)\n"
        "(len(opt.params), opt.params[0] is w)"
    )
    assert count == 2 and first_is_w is True, "a generator is accepted; a repeated parameter is kept once"
