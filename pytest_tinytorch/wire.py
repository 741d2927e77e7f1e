"""What crosses the trust boundary: plain data, encoded as JSON, checked with exact types.

Inputs go into the kernel encoded by `encode`; results come back as JSON text printed by the
kernel-side helper (`KERNEL_HELPER`) and are rebuilt here by `decode`, which accepts only JSON
primitives and three tagged forms (arrays, NumPy scalars, tuples). Nothing from the kernel is
ever called, compared with its own ``==`` or trusted as a verdict.
"""

from __future__ import annotations

import json

import numpy as np

# Only numeric and boolean arrays cross the boundary: no object, string or void dtypes.
ALLOWED_KINDS = "biuf"
MAX_DEPTH = 32


class NotPlainData(AssertionError):
    """The student's code returned something other than plain data (e.g. a Tensor)."""


class WireError(AssertionError):
    """The kernel's answer was not well-formed plain data."""


def encode(value, depth=0):
    """A JSON-ready form of a plain value, for sending inputs into the kernel."""
    if depth > MAX_DEPTH:
        raise ValueError("input nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value  # json writes NaN and Infinity, and reads them back as floats
    if kind is np.ndarray:
        if value.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"cannot send an array of dtype {value.dtype} to the kernel")
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"__scalar__": value.item(), "dtype": value.dtype.str}
    if kind is tuple:
        return {"__tuple__": [encode(v, depth + 1) for v in value]}
    if kind is list:
        return [encode(v, depth + 1) for v in value]
    if kind is dict and all(type(k) is str for k in value):
        return {"__dict__": {k: encode(v, depth + 1) for k, v in value.items()}}
    raise TypeError(f"cannot send a {kind.__name__} to the kernel; send numbers, strings, lists, tuples, dicts or arrays")


def _dtype(spec):
    if type(spec) is not str:
        raise WireError(f"dtype must be a string, got {type(spec).__name__}")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise WireError(f"unknown dtype {spec!r}") from None
    if dtype.kind not in ALLOWED_KINDS:
        raise WireError(f"dtype {dtype} is not allowed across the boundary")
    return dtype


def decode(value, depth=0):
    """Rebuild a value sent by the kernel, accepting plain data only (exact types)."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [decode(v, depth + 1) for v in value]
    if kind is not dict:
        raise WireError(f"unexpected {kind.__name__} in the kernel's answer")
    if "__ndarray__" in value:
        dtype, shape = _dtype(value.get("dtype")), value.get("shape")
        if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
            raise WireError(f"bad array shape {shape!r}")
        try:
            array = np.array(value["__ndarray__"], dtype=dtype)
            return array.reshape(shape)
        except (ValueError, TypeError, OverflowError) as err:
            raise WireError(f"malformed array: {err}") from None
    if "__scalar__" in value:
        item = value["__scalar__"]
        if type(item) not in (bool, int, float):
            raise WireError(f"bad scalar {item!r}")
        return _dtype(value.get("dtype")).type(item)
    if "__tuple__" in value and type(value["__tuple__"]) is list:
        return tuple(decode(v, depth + 1) for v in value["__tuple__"])
    if "__dict__" in value and type(value["__dict__"]) is dict:
        return {k: decode(v, depth + 1) for k, v in value["__dict__"].items()}
    if "__unsupported__" in value:
        raise NotPlainData(
            f"your code returned a {str(value['__unsupported__'])[:80]}, but the test needs plain "
            f"data (a number, a string, a list or a NumPy array); return `.data` of a Tensor"
        )
    raise WireError(f"unexpected object in the kernel's answer: keys {sorted(value)[:5]}")


def parse_answer(text: str, nonce: str):
    """Find the helper's answer line (marked with this call's nonce) in the kernel's stdout."""
    for line in reversed(text.split("\n")):  # not splitlines(): it also splits on \x1c-\x1e
        if line.startswith(nonce):
            try:
                return json.loads(line[len(nonce):])
            except (json.JSONDecodeError, RecursionError) as err:
                raise WireError(f"the kernel's answer is not valid JSON ({err})") from None
    return None


# Runs inside the kernel, once, before the student's notebook. It keeps private references to
# json, ast and the output stream, so later student code that rebinds those names does not break
# it by accident. That is no defence against a hostile notebook, and need not be: it can rebind
# the helper (its random name is in user_ns), patch json.dumps or sys.stdout, or rewrite the
# grader's call with an input or AST transformer, and so print any answer line for a call. That
# gives it nothing student code lacks (the answer is a function of the test's code and inputs,
# which student code sees anyway): the answer is only plain data, and pytest decides what it is
# worth. tests/test_hostile.py checks that every such forgery scores what hard-coding scores.
KERNEL_HELPER = r'''
def __tinytorch_install():
    import ast, json, sys, traceback
    import numpy
    shell = get_ipython()
    shell.keepkernel_on_exit = True  # exit() in a notebook would stop the kernel 0.1 s later: a race
    out = sys.stdout
    ndarray, generic = numpy.ndarray, numpy.generic
    plain = (bool, int, str)

    def decode(v):
        if type(v) is list:
            return [decode(x) for x in v]
        if type(v) is dict:
            if "__ndarray__" in v:
                return numpy.array(v["__ndarray__"], dtype=numpy.dtype(v["dtype"])).reshape(v["shape"])
            if "__scalar__" in v:
                return numpy.dtype(v["dtype"]).type(v["__scalar__"])
            if "__tuple__" in v:
                return tuple(decode(x) for x in v["__tuple__"])
            if "__dict__" in v:
                return {k: decode(x) for k, x in v["__dict__"].items()}
        return v

    def encode(v, depth=0):
        kind = type(v)
        if depth > 32:
            raise ValueError("result nested too deeply")
        if v is None or kind in plain or kind is float:
            return v
        if kind is ndarray and v.dtype.kind in "biuf":
            return {"__ndarray__": v.tolist(), "dtype": v.dtype.str, "shape": list(v.shape)}
        if isinstance(v, generic) and v.dtype.kind in "biuf":
            return {"__scalar__": v.item(), "dtype": v.dtype.str}
        if kind is tuple:
            return {"__tuple__": [encode(x, depth + 1) for x in v]}
        if kind is list:
            return [encode(x, depth + 1) for x in v]
        if kind is dict and all(type(k) is str for k in v):
            return {"__dict__": {k: encode(x, depth + 1) for k, x in v.items()}}
        return {"__unsupported__": kind.__name__}

    def describe(err):
        try:
            message = str(err)
        except BaseException:
            message = "<the exception's message could not be read>"
        names = [c.__name__ for c in type(err).__mro__]
        frames = traceback.extract_tb(err.__traceback__)[1:]  # [0] is this helper's own frame
        where = [f"{f.name} line {f.lineno}: {f.line}" for f in frames if f.filename != "<test>"][-3:]
        return {"type": names[0], "mro": names, "message": message[:2000], "where": where}

    def value(request):
        req = json.loads(request)
        ns = dict(shell.user_ns)
        ns.update({k: decode(v) for k, v in req["inputs"].items()})
        try:
            tree = ast.parse(req["code"], "<test>", "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<test>", "exec"), ns)
            result = eval(compile(last, "<test>", "eval"), ns) if last is not None else None
            answer = {"ok": encode(result)}
        except BaseException as err:  # the student's exception is data for the test
            answer = {"error": describe(err)}
        try:
            text = json.dumps(answer, allow_nan=True)
        except (TypeError, ValueError) as err:
            text = json.dumps({"error": {"type": "EncodingError", "mro": [], "message": str(err), "where": []}})
        out.write("\n" + req["nonce"] + text + "\n")
        out.flush()

    return value

__tinytorch_value__ = __tinytorch_install()
del __tinytorch_install
'''
