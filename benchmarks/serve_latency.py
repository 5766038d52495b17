"""What `wam serve` costs: round-trip ms per chunk through the server vs the same policy in-process,
per paradigm at batch 1, and requests/s with 8 clients at once vs 1, as ratios measured in one run.

    .venv/bin/python benchmarks/serve_latency.py [--depth 4] [--repeats 10] [--clients 8]

Same model family and shapes as paradigm_speed.py (64 px frames, depth 4, a 16-action chunk, 10
sampling steps, the K/V cache on); untrained weights (latency does not depend on them). The server
runs in this process on loopback (its own thread, 1 torch thread for inference), so the round trip
includes msgpack encoding, the WebSocket and the server's scheduling, not the network.
Results are appended to benchmarks/results/serve_latency.md.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import torch

from results_file import append, header
from wam.data.text import HashTextEncoder
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms import PolicyModelConfig, build_paradigm
from wam.policy import WamPolicy
from wam.serve.client import PolicyClient
from wam.serve.server import PolicyServer, PolicyService, model_info

PARADIGMS = ("action_only", "representation", "joint", "inverse_dynamics")
KEY = "observation.images.corner"


def make_policy(name: str, depth: int) -> WamPolicy:
    tok = FrameAutoencoder(TokenizerConfig(image_size=64, latent_channels=8))
    torch.manual_seed(0)
    paradigm = build_paradigm(name, PolicyModelConfig(backbone=BackboneConfig(depth=depth)), tok)
    stats = {k: {"mean": np.zeros(4), "std": np.ones(4), "min": -np.ones(4), "max": np.ones(4)}
             for k in ("observation.state", "action")}
    return WamPolicy(paradigm, stats, KEY, HashTextEncoder()).eval()


def observation(rng: np.random.Generator) -> dict:
    return {KEY: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
            "observation.state": rng.normal(size=4).astype(np.float32), "task": "reach the goal"}


def per_chunk_ms(local, client: PolicyClient, obs: list[dict]) -> tuple[float, float, float]:
    """Median ms per chunk in-process and through the server, interleaved call by call (the machine's
    load drifts), and the median transport cost: round trip minus the server's own time, same call."""
    local(obs[0]), client.predict_action_chunk(obs[0])  # warm-up
    times = []
    for o in obs:
        start = time.perf_counter()
        local(o)
        middle = time.perf_counter()
        client.predict_action_chunk(o)
        end = time.perf_counter()
        times.append((1000 * (middle - start), 1000 * (end - middle), 1000 * (end - middle) - client.last_server_ms))
    return tuple(float(v) for v in np.median(np.array(times), axis=0))


def throughput(address: str, clients: int, requests: int, obs: dict) -> float:
    """Requests/s served while `clients` clients each send `requests` predictions back to back."""
    conns = [PolicyClient(address, timeout=600) for _ in range(clients)]
    for c in conns:
        c.predict_action_chunk(obs)  # connected and warm
    barrier = threading.Barrier(clients + 1)

    def run(c: PolicyClient) -> None:
        barrier.wait()
        for _ in range(requests):
            c.predict_action_chunk(obs)

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    rate = clients * requests / (time.perf_counter() - start)
    for c in conns:
        c.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    obs = [observation(rng) for _ in range(args.repeats)]
    rows, rates = [], None
    for name in PARADIGMS:
        policy = make_policy(name, args.depth)
        server = PolicyServer(PolicyService(policy, model_info(policy)), port=0).start()
        twin = make_policy(name, args.depth)  # the same weights, in-process
        with PolicyClient(server.address, timeout=600) as client:
            local, remote, transport = per_chunk_ms(twin.predict_action_chunk, client, obs)
        if name == "representation":
            one = throughput(server.address, 1, args.repeats, obs[0])
            many = throughput(server.address, args.clients, max(args.repeats // 2, 1), obs[0])
            rates = (one, many)
        server.stop()
        rows.append((name, local, remote, transport))
        print(f"{name}: in-process {local:.1f} ms, through the server {remote:.1f} ms", flush=True)
    lines = [*header("serve_latency.py"),
             f"torch {torch.__version__}, this CPU, 1 torch thread; batch 1, depth {args.depth}, 64 px, chunk 16, "
             f"{PolicyModelConfig().sample_steps} sampling steps, K/V cache on; medians of {args.repeats} chunks, calls interleaved",
             "", "| paradigm | in-process ms/chunk | server round trip ms/chunk | x in-process | transport ms "
             "(round trip - server time, same call) | (in-process + transport) / in-process |",
             "|---|---|---|---|---|---|"]
    for name, local, remote, transport in rows:
        lines.append(f"| {name} | {local:.1f} | {remote:.1f} | {remote / local:.2f} | {transport:.2f} | "
                     f"{(local + transport) / local:.3f} |")
    one, many = rates
    lines += ["", f"representation, requests/s: 1 client {one:.2f}, {args.clients} clients at once {many:.2f} "
              f"(x {many / one:.2f}; one model answers one request at a time, so the total rate stays that of "
              f"one client and each of {args.clients} clients waits ~{args.clients}x as long)"]
    append("serve_latency", "Policy server latency (benchmarks/serve_latency.py)", lines)


if __name__ == "__main__":
    main()
