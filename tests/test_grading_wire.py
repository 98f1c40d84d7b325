"""edgekit.grading.wire: data round-trips exactly; anything else is refused with a clear error."""

import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgekit.grading import wire

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                    st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=20)


@given(values)
def test_round_trip_of_python_data(v):
    assert wire.loads(wire.dumps(v)) == v


@given(hnp.arrays(st.sampled_from(["float32", "float64", "int8", "uint8", "int64", "bool", "complex64"]),
                  hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))
def test_round_trip_of_arrays_keeps_dtype_shape_and_bits(a):
    b = wire.loads(wire.dumps(a))
    assert b.dtype == a.dtype and b.shape == a.shape, (a.dtype, a.shape, b.dtype, b.shape)
    assert a.tobytes() == b.tobytes()


def test_numpy_scalars_nan_and_inf_survive():
    back = wire.loads(wire.dumps([np.float32(1.5), float("nan"), float("-inf"), np.int64(3)]))
    assert back[0] == 1.5 and back[0].dtype == np.float32 and np.isnan(back[1]) and back[2] == -np.inf
    assert back[3].dtype == np.int64


def test_objects_are_not_data():
    with pytest.raises(wire.Unsendable, match="object is not data|of type object"):
        wire.encode(object())
    with pytest.raises(wire.Unsendable):
        wire.encode(np.array([object()]))


@pytest.mark.parametrize("bad, match", [
    ({"$nd": "|O", "shape": [1], "data": ""}, "not allowed"),
    ({"$nd": "<f4", "shape": [3], "data": "AAAA"}, "bytes"),
    ({"$nd": "<f4", "shape": [-1], "data": ""}, "negative"),
    ({"$float": "1e999999"}, "bad float"),
    ({"$pickle": "gASV"}, "unknown tag"),
    ({"$dict": [[1]]}, "malformed"),
])
def test_malformed_messages_raise_wire_error(bad, match):
    with pytest.raises(wire.WireError, match=match):
        wire.decode(bad)


def test_framing_round_trip_and_limits():
    r, w = os.pipe()
    wire.send(w, {"op": "get", "value": wire.encode(np.arange(3))})
    msg = wire.recv(r)
    assert msg["op"] == "get" and wire.decode(msg["value"]).tolist() == [0, 1, 2]
    os.write(w, struct.pack(">I", wire.MAX_MESSAGE + 1))
    with pytest.raises(wire.WireError, match="limit"):
        wire.recv(r)
    body = json.dumps([1, 2]).encode()
    os.write(w, struct.pack(">I", len(body)) + body)
    with pytest.raises(wire.WireError, match="not a JSON object"):
        wire.recv(r)
    os.close(w)
    with pytest.raises(EOFError):
        wire.recv(r)
    os.close(r)


def test_a_trickling_or_silent_peer_cannot_block_past_the_deadline():
    import time

    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    os.write(w, struct.pack(">I", 100) + b"{")  # announces 100 bytes, sends 1
    with pytest.raises(TimeoutError):
        wire.recv(r, deadline=time.monotonic() + 0.2)
    with pytest.raises(TimeoutError):  # nobody reads: the pipe buffer (64 KiB) fills up
        wire.send(w, {"blob": "x" * (1 << 20)}, deadline=time.monotonic() + 0.2)
    os.close(r), os.close(w)
