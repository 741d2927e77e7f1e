"""The trust boundary's data format: exact types in, exact types out, nothing executable."""

import json

import numpy as np
import pytest

from pytest_tinytorch import wire


@pytest.mark.parametrize("value", [None, True, 3, 2.5, "text", [1, 2.0], (1, (2, 3)), {"a": [1]},
                                   np.arange(6, dtype=np.int64).reshape(2, 3), np.zeros((0, 3), np.float32),
                                   np.float32(1.5), np.array(2.0)])
def test_round_trip_keeps_type_dtype_and_shape(value):
    back = wire.decode(json.loads(json.dumps(wire.encode(value))))
    assert type(back) is type(value)
    if isinstance(value, (np.ndarray, np.generic)):
        assert back.dtype == value.dtype and np.shape(back) == np.shape(value)
        np.testing.assert_array_equal(back, value)
    else:
        assert back == value


def test_non_finite_floats_cross():
    back = wire.decode(json.loads(json.dumps(wire.encode([float("nan"), float("inf")]))))
    assert np.isnan(back[0]) and back[1] == float("inf")


@pytest.mark.parametrize("payload", [
    {"__ndarray__": [1], "dtype": "O", "shape": [1]},          # object arrays could hold anything
    {"__ndarray__": [1], "dtype": "<U3", "shape": [1]},
    {"__ndarray__": [1, 2], "dtype": "<f4", "shape": [3]},      # shape does not fit
    {"__scalar__": "1", "dtype": "<f4"},
    {"__whatever__": 1},
])
def test_malformed_or_dangerous_answers_are_rejected(payload):
    with pytest.raises(wire.WireError):
        wire.decode(payload)


def test_objects_are_reported_as_not_plain_data():
    with pytest.raises(wire.NotPlainData, match="returned a Tensor.*`.data`"):
        wire.decode({"__unsupported__": "Tensor"})


def test_sending_objects_into_the_kernel_is_refused():
    with pytest.raises(TypeError):
        wire.encode(object())
    with pytest.raises(TypeError):
        wire.encode(np.array([object()]))


def test_answer_line_is_found_by_its_nonce_only():
    text = 'student print\n@n:{"ok": 1}\nmore\n@x:{"ok": 2}\n'
    assert wire.parse_answer(text, "@n:") == {"ok": 1}
    assert wire.parse_answer("no answer here", "@n:") is None
