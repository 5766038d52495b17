"""`wam serve` end to end on loopback: same actions as in-process, and every bad input answered."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request

import numpy as np
import pytest
from websockets.sync.client import connect

from tests.conftest import IMAGE_KEY, write_dataset
from tests.paradigms.test_contract import perturbed, tiny
from wam.cli import main
from wam.data.lerobot_format import LeRobotDataset
from wam.data.text import HashTextEncoder
from wam.errors import ConfigError, WamError
from wam.policy import WamPolicy
from wam.serve.client import PolicyClient, RemoteError
from wam.serve.protocol import decode, encode
from wam.serve.server import PolicyServer, PolicyService, ServeConfig, model_info

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve") / "d"
    write_dataset(root)
    return LeRobotDataset(root).stats


def make_policy(stats, name="representation") -> WamPolicy:
    return WamPolicy(perturbed(tiny(name), 0.05), stats, IMAGE_KEY, HashTextEncoder())


@pytest.fixture(scope="module")
def served(stats):
    policy = make_policy(stats)
    policy.state_names = ("hand_x", "hand_y", "hand_z", "gripper")  # as training sets them from the dataset
    server = PolicyServer(PolicyService(policy, model_info(policy, 10.0, ["reach-v3"])), port=0).start()
    yield server, make_policy(stats)  # a second, identical policy to compare with in-process
    server.stop()


def observations(n: int, seed: int = 0, size: int = 32) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{IMAGE_KEY: rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
             "observation.state": rng.normal(size=4).astype(np.float32), "task": "push the puck"} for _ in range(n)]


def local_actions(policy: WamPolicy, seed: int, obs: list[dict]) -> np.ndarray:
    policy.reset(seed=seed, task="t")
    return np.stack([policy.select_action(o) for o in obs])


def test_remote_select_action_equals_local(served, caplog):
    server, local = served
    obs = observations(7)
    with caplog.at_level(logging.INFO, logger="wam.serve"), PolicyClient(server.address, timeout=10) as client:
        client.reset(seed=3, task="t")
        remote = np.stack([client.select_action(o) for o in obs])
        assert client.info["obs_offsets"] == [-1, 0] and client.info["chunk"] == 3 and client.info["control_hz"] == 10
        assert client.state_dim == 4 and client.state_names == ("hand_x", "hand_y", "hand_z", "gripper")  # eval's env
    np.testing.assert_array_equal(remote, local_actions(local, 3, obs))  # the history at offset -1 included
    assert not np.array_equal(remote, local_actions(local, 4, obs))  # the seed matters
    assert any("predict id=" in r.message and " ms" in r.message for r in caplog.records)  # latency logged


def test_http_health_and_info(served):
    server, _ = served
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert opener.open(f"http://{server.address}/health", timeout=5).read() == b"ok\n"
    info = json.loads(opener.open(f"http://{server.address}/info", timeout=5).read())
    assert info["features"][IMAGE_KEY]["shape"] == [2, 32, 32, 3] and info["action"]["shape"] == [3, 4]
    assert info["tasks"] == ["reach-v3"]


def raw(server):
    return connect(f"ws://{server.address}", proxy=None, compression=None, open_timeout=5).__enter__()


def ask(ws, message) -> dict:
    ws.send(message if isinstance(message, (bytes, str)) else encode(message))
    return decode(ws.recv(timeout=10))


@pytest.mark.parametrize("message, needle", [
    (b"\xc1\x00garbage", "not a msgpack message"),
    ("a text frame", "binary msgpack"),
    ({"type": "fly", "id": 1}, "unknown request type 'fly'"),
    ({"type": "health", "id": 1, "colour": "red"}, "unknown key(s) ['colour']"),
    ({"type": "predict", "id": 1, "task": "x"}, "needs ['obs']"),
    ({"type": "predict", "id": 1, "task": "x", "obs": {IMAGE_KEY: np.zeros((2, 32, 32, 3), np.uint8)}},
     "do not match the policy's features"),
    ({"type": "predict", "id": 1, "task": "x", "obs": {IMAGE_KEY: np.zeros((1, 32, 32, 3), np.uint8),
                                                       "observation.state": np.zeros((1, 4), np.float32)}},
     "expected 2 frames"),
    ({"type": "predict", "id": 1, "task": "x", "obs": {IMAGE_KEY: np.zeros((2, 20, 20, 3), np.uint8),
                                                       "observation.state": np.zeros((2, 4), np.float32)}},
     "this policy takes 32x32"),
    ({"type": "predict", "id": 1, "task": "x", "obs": {IMAGE_KEY: np.zeros((2, 32, 32, 3), np.uint8),
                                                       "observation.state": np.zeros((2, 7), np.float32)}},
     "must have shape (4,)"),
    ({"type": "reset", "id": 1, "seed": "ten"}, "integer 'seed'"),
    ({"type": "reset", "id": 1, "seed": 1, "episode": "first"}, "integer 'seed' and 'episode'"),
    ({"type": "predict", "id": 1, "task": "x", "obs": {IMAGE_KEY: np.zeros((32, 32, 3), np.uint8),
                                                       "observation.state": np.zeros(4, np.float32)}},
     "expected frames (To, H, W, 3)"),
    ({"type": "predict", "id": 1, "task": "x", "obs": {IMAGE_KEY: np.zeros((2, 32, 32, 3), np.uint8),
                                                       "observation.state": np.zeros((2, 4), np.float32)},
      "prefix": np.zeros((5, 4), np.float32)}, "prefix must be (P, 4) with P < 3"),
])
def test_bad_messages_get_a_clear_error_and_the_connection_keeps_serving(served, message, needle):
    server, _ = served
    with raw(server) as ws:
        reply = ask(ws, message)
        assert reply["ok"] is False and needle in reply["error"] and "\n" not in reply["error"]
        assert ask(ws, {"type": "health", "id": 2}) == {"id": 2, "ok": True, "status": "ok",
                                                         "server_ms": pytest.approx(0, abs=1e3)}


def test_a_corrupt_array_is_refused(served):
    import msgpack

    server, _ = served
    bad = msgpack.ExtType(1, msgpack.packb(["<f4", [1000, 1000], b"\x00" * 8]))  # claims 4 MB, holds 8 bytes
    with raw(server) as ws:
        reply = ask(ws, msgpack.packb({"type": "predict", "id": 1, "task": "x", "obs": {"a": bad}}))
        assert not reply["ok"] and "does not match its shape" in reply["error"]
        pickled = msgpack.ExtType(1, msgpack.packb(["|O", [1], b"\x80\x04."]))  # object dtype: never
        assert "not accepted" in ask(ws, msgpack.packb({"type": "reset", "id": 1, "seed": pickled}))["error"]


def test_client_errors_carry_the_server_reason(served):
    server, _ = served
    with PolicyClient(server.address, timeout=10) as client:
        client.reset()
        with pytest.raises(RemoteError, match="this policy takes 32x32"):
            client.predict_action_chunk(observations(1, size=20)[0])
        assert client.predict_action_chunk(observations(1)[0]).shape == (3, 4)  # still serving


def test_rtc_through_the_server_keeps_the_committed_actions(served):
    server, _ = served
    with PolicyClient(server.address, timeout=10, threshold=1, merge="rtc") as client:
        assert client.info["rtc"] is True
        client.reset(seed=0, task="t")
        obs = observations(6)
        committed = client.predict_action_chunk(obs[0])[1:2]  # (1, 4), inside the action range
        chunk = client.predict_action_chunk(obs[1], prefix=committed)
        np.testing.assert_allclose(chunk[:1], committed, atol=1e-5)
        actions = [client.select_action(o) for o in obs[2:]]
        assert len(actions) == 4 and max(client.control.sources) >= 2  # chunks joined, requests with a prefix


def test_pipelined_requests_are_answered_in_order(served):
    server, _ = served
    window = {IMAGE_KEY: np.zeros((2, 32, 32, 3), np.uint8), "observation.state": np.zeros((2, 4), np.float32)}
    with raw(server) as ws:
        for i in range(1, 7):  # sent back to back, a slow predict among fast health checks
            ws.send(encode({"type": "predict", "id": i, "task": "x", "obs": window} if i % 2 else
                           {"type": "health", "id": i}))
        assert [decode(ws.recv(timeout=10))["id"] for _ in range(6)] == [1, 2, 3, 4, 5, 6]


def test_asynchronous_client_through_the_server(served):
    server, _ = served
    with PolicyClient(server.address, timeout=10, threshold=1, merge="blend", asynchronous=True) as client:
        client.reset(seed=0, task="t")
        actions = [client.select_action(o) for o in observations(8)]
    assert all(a.shape == (4,) for a in actions) and max(client.control.sources) >= 3


def test_oversize_messages(stats):
    policy = make_policy(stats)
    server = PolicyServer(PolicyService(policy, model_info(policy, max_bytes=20_000)), port=0,
                          max_bytes=20_000).start()
    try:
        with raw(server) as ws:
            ws.send(encode({"type": "health", "id": 1, "pad": np.zeros(50_000, np.uint8)}))
            with pytest.raises(Exception) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1009  # "message too big": the connection is closed, nothing parsed
        with PolicyClient(server.address, timeout=10) as client:
            big = observations(1, size=128)[0]
            with pytest.raises(RemoteError, match="over the server's limit of 20000 bytes"):
                client.predict_action_chunk(big)
            assert client.health()  # the server kept serving
    finally:
        server.stop()


def test_a_client_that_disconnects_mid_request_does_not_stop_the_server(served, monkeypatch):
    server, _ = served
    service = server.service
    slow = service.policy.predict_from_history

    def sleepy(*a, **k):
        time.sleep(0.3)
        return slow(*a, **k)

    monkeypatch.setattr(service.policy, "predict_from_history", sleepy)
    window = {IMAGE_KEY: np.zeros((2, 32, 32, 3), np.uint8), "observation.state": np.zeros((2, 4), np.float32)}
    ws = raw(server)
    ws.send(encode({"type": "predict", "id": 1, "task": "x", "obs": window}))
    ws.close()  # gone before the answer
    with PolicyClient(server.address, timeout=10) as client:
        assert client.predict_action_chunk(observations(1)[0]).shape == (3, 4)


def test_eight_clients_at_once_each_get_their_own_answers(served):
    server, local = served
    obs = observations(4, seed=5)
    results, errors = {}, []

    def run(i: int) -> None:
        try:
            with PolicyClient(server.address, timeout=30) as client:
                client.reset(seed=i, task="t")
                results[i] = np.stack([client.select_action(o) for o in obs])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    assert not errors and len(results) == 8
    for i in (0, 7):  # sessions do not share noise or history: each equals its own local run
        np.testing.assert_array_equal(results[i], local_actions(local, i, obs))


def test_token(stats):
    policy = make_policy(stats)
    server = PolicyServer(PolicyService(policy, model_info(policy)), port=0, token="s3cret").start()
    try:
        for token in ("", "wrong"):
            with pytest.raises(RemoteError, match="refused the token"):
                PolicyClient(server.address, token=token, timeout=5)
        with PolicyClient(server.address, token="s3cret", timeout=5) as client:
            assert client.health()
    finally:
        server.stop()
    with pytest.raises(ConfigError, match="token is required"):
        PolicyServer(PolicyService(policy, model_info(policy)), host="0.0.0.0")
    with pytest.raises(ConfigError, match="set --token"):
        ServeConfig(policy="x", host="192.168.1.5").check()
    ServeConfig(policy="x", host="192.168.1.5", token="t").check()


def test_port_in_use(served):
    server, _ = served
    other = PolicyServer(server.service, port=server.port)
    with pytest.raises(WamError, match="port is in use"):
        other.start()


def test_no_server_and_not_a_policy(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    with pytest.raises(RemoteError, match="no policy server"):
        PolicyClient(f"127.0.0.1:{port}", timeout=5)
    (tmp_path / "notes.txt").write_text("not a policy")
    assert main(["serve", f"--policy={tmp_path}", "--port=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_sessions_keep_their_own_test_time_state(stats):
    """Hierarchical caches its plan for `policy.hierarchical.plan_every` calls: two interleaved clients each get
    what they would get alone (the server swaps each session's plan in and out)."""
    policy = make_policy(stats, "hierarchical")
    server = PolicyServer(PolicyService(policy, model_info(policy)), port=0).start()
    a_obs, b_obs = observations(4, seed=1), observations(4, seed=2)
    try:
        with PolicyClient(server.address, timeout=10) as a, PolicyClient(server.address, timeout=10) as b:
            a.reset(seed=1, task="t")
            b.reset(seed=2, task="t")
            got = [(a.predict_action_chunk(x), b.predict_action_chunk(y)) for x, y in zip(a_obs, b_obs)]
            assert a.info["rtc"] is False
    finally:
        server.stop()
    alone = make_policy(stats, "hierarchical")
    for k, obs in enumerate((a_obs, b_obs)):
        alone.reset(seed=k + 1, task="t")
        expected = [alone.predict_action_chunk(o, generator=alone.generator) for o in obs]
        for step, chunk in enumerate(expected):
            np.testing.assert_allclose(got[step][k], chunk, atol=1e-6)


def test_a_value_frame_policy_sends_each_chunk_s_value(stats):
    """Cosmos Policy's value frame: the served reply carries the value the chunk's frame predicted, the same the
    in-process policy reads; a policy without one sends none."""
    from tests.paradigms.test_contract import SETTINGS

    def valued():
        return WamPolicy(perturbed(tiny("joint", integration="latent_frame", **SETTINGS["value"]), 0.05), stats,
                         IMAGE_KEY, HashTextEncoder())

    policy, obs = valued(), observations(2, seed=3)
    server = PolicyServer(PolicyService(policy, model_info(policy)), port=0).start()
    try:
        with PolicyClient(server.address, timeout=10) as client:
            client.reset(seed=5, task="t")
            got = []
            for o in obs:
                client.predict_action_chunk(o)
                got.append(client.last_value)
    finally:
        server.stop()
    alone = valued()
    alone.reset(seed=5, task="t")
    expected = []
    for o in obs:
        alone.predict_action_chunk(o, generator=alone.generator)
        expected.append(alone.last_value)
    assert all(isinstance(v, float) for v in got) and got == expected
    assert make_policy(stats).last_value is None
