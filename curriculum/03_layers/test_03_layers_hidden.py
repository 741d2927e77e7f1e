"""Hidden graded tests of module 03 (Layers): random shapes and seeds drawn at grading time."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("03_layers"), pytest.mark.hidden]


def seed_of(rng):
    return int(rng.integers(2**31))


def sizes(rng, count, low=1, high=9):
    return [int(n) for n in rng.integers(low, high, size=count)]


@pytest.mark.points(2)
def test_linear_init_is_seeded(student, rng):
    fan_in, fan_out = sizes(rng, 2, 30, 80)
    seed = seed_of(rng)
    same, different, from_generator, bound_ok, bias_bound_ok = student.value(
        "a, b, c = Linear(i, o, rng=seed), Linear(i, o, rng=seed), Linear(i, o, rng=seed + 1)\n"
        "g = Linear(i, o, rng=np.random.default_rng(seed))\n"
        "k = 1 / np.sqrt(i)\n"
        "(bool(np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)),\n"
        " not np.array_equal(a.weight.data, c.weight.data),\n"
        " bool(np.array_equal(g.weight.data, a.weight.data)),\n"
        " bool(np.abs(a.weight.data).max() <= k * (1 + 1e-6)),\n"
        " bool(np.abs(a.bias.data).max() <= k * (1 + 1e-6) and a.bias.data.std() > k / 4))",
        i=fan_in, o=fan_out, seed=seed,
    )
    assert same and different, "the same rng seed must give the same weights, another seed others"
    assert from_generator, "rng may be a np.random.Generator as well as an int seed"
    assert bound_ok and bias_bound_ok, "weight and bias are drawn from U(-1/sqrt(in), 1/sqrt(in))"


@pytest.mark.points(2)
def test_linear_forward_on_vectors_and_leading_dimensions(student, rng):
    fan_in, fan_out, a, b = sizes(rng, 4)
    w = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
    bias = rng.standard_normal(fan_out).astype(np.float32)
    x3 = rng.standard_normal((a, b, fan_in)).astype(np.float32)
    x1 = rng.standard_normal(fan_in).astype(np.float32)
    got3, got1 = student.value(
        "layer = Linear(i, o)\n"
        "layer.load_state_dict({'weight': w, 'bias': bias})\n"
        "(layer(Tensor(x3)).data, layer(Tensor(x1)).data)",
        i=fan_in, o=fan_out, w=w, bias=bias, x3=x3, x1=x1,
    )
    assert_array(got3, x3 @ w.T + bias, dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got1, x1 @ w.T + bias, dtype=np.float32, rtol=1e-4, atol=1e-5)


@pytest.mark.points(1)
def test_linear_rejects_a_wrong_input_width(student, rng):
    fan_in = int(rng.integers(2, 9))
    with pytest.raises(StudentError) as err:
        student.value("Linear(i, 3)(Tensor(np.ones((2, i + 1))))", i=fan_in)
    assert err.value.is_a("ValueError")


@pytest.mark.points(1)
def test_tied_weights_are_listed_once(student):
    names = student.value(
        "a, b = Linear(3, 3), Linear(3, 3)\n"
        "b.weight = a.weight\n"
        "[n for n, _ in Sequential(a, b).named_parameters()]"
    )
    assert names == ["0.weight", "0.bias", "1.bias"], "a shared Parameter is listed once, under its first name"


@pytest.mark.points(1)
def test_reassigning_an_attribute_updates_the_registration(student, rng):
    w = rng.standard_normal((2, 3)).astype(np.float32)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    names, out, child_names = student.value(
        "layer = Linear(3, 2)\n"
        "layer.bias = None\n"
        "layer.load_state_dict({'weight': w})\n"
        "holder = Module()\n"
        "holder.child = Linear(2, 2)\n"
        "holder.child = 'replaced by a string'\n"
        "([n for n, _ in layer.named_parameters()], layer(Tensor(x)).data,\n"
        " [n for n, _ in holder.named_parameters()])",
        w=w, x=x,
    )
    assert names == ["weight"] and child_names == []
    assert_array(out, x @ w.T, dtype=np.float32)


@pytest.mark.points(2)
def test_deeply_nested_names_and_state_dict_shapes(student, rng):
    widths = sizes(rng, 4, 1, 7)
    shapes = student.value(
        "inner = Sequential(Linear(w[0], w[1]), Sequential(Linear(w[1], w[2]), Dropout(0.1)))\n"
        "model = Sequential(inner, Linear(w[2], w[3], bias=False))\n"
        "{name: tuple(int(d) for d in value.shape) for name, value in model.state_dict().items()}",
        w=widths,
    )
    assert list(shapes) == ["0.0.weight", "0.0.bias", "0.1.0.weight", "0.1.0.bias", "1.weight"]
    assert shapes == {
        "0.0.weight": (widths[1], widths[0]), "0.0.bias": (widths[1],),
        "0.1.0.weight": (widths[2], widths[1]), "0.1.0.bias": (widths[2],),
        "1.weight": (widths[3], widths[2]),
    }


@pytest.mark.points(1)
def test_failed_load_leaves_the_model_unchanged(student, rng):
    raised_value_error, unchanged = student.value(
        "m = Linear(3, 2, rng=seed)\n"
        "before = m.weight.data.copy()\n"
        "try:\n"
        "    m.load_state_dict({'weight': np.ones((2, 3)), 'bias': np.ones(3)})\n"
        "    raised = False\n"
        "except ValueError:\n"
        "    raised = True\n"
        "(raised, bool(np.array_equal(m.weight.data, before)))",
        seed=seed_of(rng),
    )
    assert raised_value_error, "a shape mismatch must raise ValueError"
    assert unchanged, "load_state_dict must check every entry before writing any"


@pytest.mark.points(1)
def test_load_state_dict_copies_in_place_and_keeps_dtype(student, rng):
    w = rng.standard_normal((2, 3))                      # float64 on purpose
    b = rng.standard_normal(2).astype(np.float32)
    same_object, weight, bias = student.value(
        "m = Linear(3, 2)\n"
        "handle = m.weight\n"
        "m.load_state_dict({'weight': w, 'bias': Tensor(b)})\n"
        "(m.weight is handle, m.weight.data, m.bias.data)",
        w=w, b=b,
    )
    assert same_object is True
    assert_array(weight, w.astype(np.float32), dtype=np.float32)
    assert_array(bias, b, dtype=np.float32)


@pytest.mark.points(2)
def test_dropout_statistics_and_seeding(student, rng):
    p = float(rng.uniform(0.1, 0.7))
    x = rng.uniform(0.5, 1.5, size=(120, 150)).astype(np.float32)
    seed = seed_of(rng)
    first, second, replay = student.value(
        "d = Dropout(p, rng=seed)\n"
        "(d(Tensor(x)).data, d(Tensor(x)).data, Dropout(p, rng=seed)(Tensor(x)).data)",
        p=p, x=x, seed=seed,
    )
    for out in (first, second):
        assert type(out) is np.ndarray and out.shape == x.shape and out.dtype == np.float32
        kept = out != 0
        assert abs(1 - kept.mean() - p) < 0.03
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-5)
    assert not np.array_equal(first, second), "each call draws a new mask"
    assert_array(replay, first, dtype=np.float32)


@pytest.mark.points(1)
def test_dropout_extremes_and_eval_inside_a_model(student, rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    all_dropped, none_dropped, in_eval = student.value(
        "model = Sequential(Dropout(0.9), Sequential(Dropout(0.7))).eval()\n"
        "(Dropout(1.0)(Tensor(x)).data, Dropout(0.0)(Tensor(x)).data, model(Tensor(x)).data)",
        x=x,
    )
    assert_array(all_dropped, np.zeros_like(x), dtype=np.float32)
    assert_array(none_dropped, x, dtype=np.float32)
    assert_array(in_eval, x, dtype=np.float32)


@pytest.mark.points(2)
def test_sequential_of_random_depth(student, rng):
    depth = int(rng.integers(2, 5))
    widths = sizes(rng, depth + 1)
    state = {}
    for i in range(depth):
        state[f"{i}.weight"] = rng.standard_normal((widths[i + 1], widths[i])).astype(np.float32)
        state[f"{i}.bias"] = rng.standard_normal(widths[i + 1]).astype(np.float32)
    x = rng.standard_normal((3, widths[0])).astype(np.float32)
    got, length, first_is_linear = student.value(
        "seq = Sequential(*[Linear(w[i], w[i + 1]) for i in range(len(w) - 1)])\n"
        "seq.load_state_dict(state)\n"
        "(seq(Tensor(x)).data, len(seq), isinstance(seq[0], Linear))",
        w=widths, state=state, x=x,
    )
    expected = x
    for i in range(depth):
        expected = expected @ state[f"{i}.weight"].T + state[f"{i}.bias"]
    assert_array(got, expected, dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert length == depth and first_is_linear is True
