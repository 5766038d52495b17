"""The wire format: numpy arrays round-trip as typed buffers, anything else is refused, never unpickled."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from wam.serve.protocol import ProtocolError, check_request, decode, encode


def test_arrays_round_trip_with_dtype_and_shape():
    msg = {"type": "predict", "id": 7, "obs": {"img": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                                               "state": np.array([[1.5, -2.0]], np.float32)},
           "big_endian": np.array([1.0, 2.0], dtype=">f8"), "n": np.int64(3)}
    out = decode(encode(msg))
    np.testing.assert_array_equal(out["obs"]["img"], msg["obs"]["img"])
    assert out["obs"]["img"].dtype == np.uint8 and out["obs"]["state"].dtype == np.float32
    assert out["big_endian"].tolist() == [1.0, 2.0] and out["n"] == 3
    out["obs"]["img"][0, 0, 0] = 99  # decoded arrays are writable copies


@pytest.mark.parametrize("bad, needle", [
    (np.array(["a"], dtype=object), "cannot be sent"),
    (np.zeros(2, np.complex64), "cannot be sent"),
    (object(), "cannot encode"),
])
def test_only_plain_data_is_encoded(bad, needle):
    with pytest.raises(ProtocolError, match=needle):
        encode({"x": bad})


@pytest.mark.parametrize("data, needle", [
    (b"\x93\x01\x02\x03", "must be a msgpack map"),
    (msgpack.packb({"a": msgpack.ExtType(5, b"")}), "unknown msgpack extension"),
    (msgpack.packb({"a": msgpack.ExtType(1, b"\xff\xff")}), "malformed array"),
    (msgpack.packb({"a": msgpack.ExtType(1, msgpack.packb(["<f4", [-1], b""]))}), "not accepted"),
    (msgpack.packb({1: 2}), "not a msgpack message"),
])
def test_garbage_is_a_protocol_error(data, needle):
    with pytest.raises(ProtocolError, match=needle):
        decode(data)


def test_request_schema():
    assert check_request({"type": "reset", "id": 1, "seed": 3}) == "reset"
    with pytest.raises(ProtocolError, match="unknown key"):
        check_request({"type": "info", "id": 1, "extra": 0})
    with pytest.raises(ProtocolError, match="needs"):
        check_request({"type": "predict", "id": 1, "obs": {}})
