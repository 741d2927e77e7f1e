"""The exported optimizers (tinytorch/core/optimizers.py) against update rules written in NumPy.

The oracles below are PyTorch's documented algorithms (torch.optim.SGD, Adam, AdamW), computed
in float64; the optimizers update float32 parameters in place. Gradients are set by hand, as
module 06's backward() will set them: a NumPy array of the parameter's shape, or None.
"""

import numpy as np
import pytest

from tinytorch.core.layers import Linear, Parameter, Sequential
from tinytorch.core.optimizers import SGD, Adam, AdamW, Optimizer
from tinytorch.core.tensor import Tensor

SHAPES = [(3, 4), (4,), (2, 1, 3)]


def sgd_oracle(init, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """Parameter values after each step; grads[t][i] is None when parameter i has no gradient."""
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
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
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
            m_hat = m[i] / (1 - beta1 ** steps[i])
            v_hat = v[i] / (1 - beta2 ** steps[i])
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([p.copy() for p in params])
    return history


def problem(seed, steps=6, none_prob=0.0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[None if rng.random() < none_prob else rng.standard_normal(s).astype(np.float32) for s in SHAPES]
             for _ in range(steps)]
    return init, grads


def run(make, init, grads):
    params = [Parameter(a.copy()) for a in init]
    opt = make(params)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()
        history.append([p.data.copy() for p in params])
    return history, params, opt


def assert_history(got, expected, rtol=1e-5, atol=1e-6):
    for step, (got_step, expected_step) in enumerate(zip(got, expected)):
        for g, e in zip(got_step, expected_step):
            assert g.dtype == np.float32
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"after step {step + 1}")


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.03, momentum=0.7, dampening=0.1, weight_decay=0.02),
    dict(lr=0.03, momentum=0.95, weight_decay=0.1, nesterov=True),
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
@pytest.mark.parametrize("seed", [0, 1])
def test_sgd_matches_pytorch_rule(kwargs, seed):
    init, grads = problem(seed, none_prob=0.2)
    got, _, _ = run(lambda ps: SGD(ps, **kwargs), init, grads)
    assert_history(got, sgd_oracle(init, grads, **kwargs))


ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3),
    dict(lr=0.02, weight_decay=0.1),
    dict(lr=0.01, betas=(0.0, 0.5), eps=1e-2, weight_decay=0.3),
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("seed", [0, 1])
def test_adam_and_adamw_match_pytorch_rule(kwargs, decoupled, seed):
    init, grads = problem(seed, steps=8, none_prob=0.2)
    cls = AdamW if decoupled else Adam
    got, _, opt = run(lambda ps: cls(ps, **kwargs), init, grads)
    expected = dict(weight_decay=1e-2) if decoupled else {}      # AdamW's default weight decay
    assert_history(got, adam_oracle(init, grads, decoupled=decoupled, **{**expected, **kwargs}))
    expected_steps = [sum(g[i] is not None for g in grads) for i in range(len(SHAPES))]
    assert [opt.state[i]["step"] if i in opt.state else 0 for i in range(len(SHAPES))] == expected_steps


def test_defaults_follow_pytorch():
    p = Parameter(np.ones(2))
    adam, adamw = Adam([p]), AdamW([p])
    assert (adam.lr, adam.betas, adam.eps, adam.weight_decay) == (1e-3, (0.9, 0.999), 1e-8, 0.0)
    assert adamw.weight_decay == 1e-2 and adamw.decoupled_weight_decay and not adam.decoupled_weight_decay
    sgd = SGD([p], lr=0.1)
    assert (sgd.momentum, sgd.dampening, sgd.weight_decay, sgd.nesterov) == (0.0, 0.0, 0.0, False)


def test_adamw_is_not_adam_with_l2():
    init, grads = problem(3)
    l2, _, _ = run(lambda ps: Adam(ps, lr=0.01, weight_decay=0.5), init, grads)
    decoupled, _, _ = run(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.5), init, grads)
    assert not np.allclose(l2[-1][0], decoupled[-1][0])


def test_eps_is_added_after_bias_correction():
    # Step 1 with g = 1, beta2 = 0.99: v_hat = 1, so the step is lr / (1 + eps) exactly.
    p = Parameter(np.array([0.0]))
    p.grad = np.array([1.0])
    Adam([p], lr=1.0, betas=(0.9, 0.99), eps=0.5).step()
    assert np.isclose(p.data[0], -1 / 1.5)


def test_updates_are_in_place_float32_and_leave_grad_alone():
    init, grads = problem(4, steps=1)
    for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                 lambda ps: Adam(ps, weight_decay=0.1), lambda ps: AdamW(ps)):
        params = [Parameter(a.copy()) for a in init]
        arrays = [p.data for p in params]
        given = [g.astype(np.float64) for g in grads[0]]
        for p, g in zip(params, given):
            p.grad = g
        opt = make(params)
        opt.step()
        assert all(p.data is a and p.data.dtype == np.float32 for p, a in zip(params, arrays))
        assert all(np.array_equal(p.grad, g.astype(np.float64)) for p, g in zip(params, grads[0]))
        for entry in opt.state.values():
            for value in entry.values():
                if isinstance(value, np.ndarray):
                    assert value.dtype == np.float32
                    assert not any(np.shares_memory(value, g) for g in given), "state must not alias p.grad"


def test_state_memory_is_one_or_two_copies_of_the_weights():
    model = Sequential(Linear(8, 16, rng=0), Linear(16, 4, rng=1))
    nbytes = sum(p.data.nbytes for p in model.parameters())
    for make, copies in [(lambda ps: SGD(ps, lr=0.1), 0), (lambda ps: SGD(ps, lr=0.1, momentum=0.9), 1),
                         (lambda ps: Adam(ps), 2), (lambda ps: AdamW(ps), 2)]:
        opt = make(model.parameters())
        for p in model.parameters():
            p.grad = np.ones(p.shape)
        opt.step()
        assert opt.state_nbytes() == copies * nbytes


def test_grad_may_be_a_tensor_and_must_have_the_right_shape():
    init, grads = problem(5, steps=3)
    params = [Parameter(a.copy()) for a in init]
    opt = SGD(params, lr=0.1, momentum=0.5)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = Tensor(g)
        opt.step()
    assert_history([[p.data for p in params]], sgd_oracle(init, grads, lr=0.1, momentum=0.5)[-1:])
    params[0].grad = np.ones(4)
    with pytest.raises(ValueError, match="shape"):
        opt.step()


def test_zero_grad_sets_none_and_none_grads_are_skipped():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = Adam([a, b], lr=0.1, weight_decay=0.1)
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    a.grad = np.ones(3)
    opt.step()
    assert np.array_equal(b.data, np.ones(2)) and 1 not in opt.state, "no gradient: no update, no state"
    before = a.data.copy()
    opt.zero_grad()
    opt.step()
    assert np.array_equal(a.data, before)


def test_params_validation():
    w = Parameter(np.ones(3))
    with pytest.raises(TypeError):
        SGD(w, lr=0.1)
    with pytest.raises(ValueError):
        SGD([], lr=0.1)
    with pytest.raises(TypeError):
        Adam([np.ones(3)])
    opt = SGD((p for p in [w, w, Parameter(np.ones(1))]), lr=0.1)
    assert len(opt.params) == 2 and opt.params[0] is w
    model = Sequential(Linear(2, 3), Linear(3, 1))
    assert len(Adam(model.parameters()).params) == 4


@pytest.mark.parametrize("make, kwargs", [
    (SGD, dict(lr=-0.1)), (SGD, dict(lr=0.1, momentum=-0.5)), (SGD, dict(lr=0.1, weight_decay=-1e-4)),
    (SGD, dict(lr=0.1, nesterov=True)), (SGD, dict(lr=0.1, momentum=0.9, dampening=0.5, nesterov=True)),
    (Adam, dict(lr=-1e-3)), (Adam, dict(eps=-1.0)), (Adam, dict(betas=(1.0, 0.999))),
    (Adam, dict(betas=(0.9, 1.0))), (Adam, dict(betas=(-0.1, 0.999))), (Adam, dict(weight_decay=-0.1)),
    (AdamW, dict(betas=(0.9, 1.5))),
])
def test_hyperparameter_validation(make, kwargs):
    with pytest.raises(ValueError):
        make([Parameter(np.ones(2))], **kwargs)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
    lambda ps: SGD(ps, lr=0.05, momentum=0.8, dampening=0.2),
    lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    lambda ps: AdamW(ps, lr=0.01),
], ids=["sgd-nesterov", "sgd-dampening", "adam", "adamw"])
def test_state_dict_round_trip_resumes_exactly(make):
    init, grads = problem(6, steps=10, none_prob=0.2)
    params = [Parameter(a.copy()) for a in init]
    opt = make(params)
    for step_grads in grads[:5]:
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()
    values, saved = [p.data.copy() for p in params], opt.state_dict()
    assert saved["param_groups"][0]["params"] == [0, 1, 2]
    assert all(saved["param_groups"][0][name] == getattr(opt, name) for name in opt.hyperparameters)
    uninterrupted = []
    for step_grads in grads[5:]:
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()
        uninterrupted.append([p.data.copy() for p in params])
    for _ in range(2):                       # loading twice: the loaded state must be a copy
        params2 = [Parameter(v.copy()) for v in values]
        opt2 = make(params2)
        opt2.lr = 99.0
        opt2.load_state_dict(saved)
        assert opt2.lr == opt.lr
        resumed = []
        for step_grads in grads[5:]:
            for p, g in zip(params2, step_grads):
                p.grad = g
            opt2.step()
            resumed.append([p.data.copy() for p in params2])
        for a, b in zip(uninterrupted, resumed):
            assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_load_state_dict_validates_before_writing():
    params = [Parameter(np.ones(3)), Parameter(np.ones(2))]
    opt = SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError):
        SGD([Parameter(np.ones(3))], lr=0.1, momentum=0.9).load_state_dict(saved)
    other = SGD([Parameter(np.ones(3)), Parameter(np.ones(5))], lr=0.5, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(saved)
    assert other.lr == 0.5 and other.state == {}, "a failed load changes nothing"


def test_base_optimizer_step_is_abstract():
    opt = Optimizer([Parameter(np.ones(1))])
    with pytest.raises(NotImplementedError):
        opt.step()


def test_zero_grad_set_to_none_false_zeroes_in_place():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    grad = np.full(3, 2.0, dtype=np.float32)
    a.grad = grad
    opt.step()
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad and not grad.any() and b.grad is None
    before = a.data.copy()
    opt.step()                               # a zero gradient still applies momentum
    np.testing.assert_allclose(a.data, before - 0.1 * 0.9 * 2.0, rtol=1e-6)
    a.grad = Tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    assert not a.grad.data.any()
