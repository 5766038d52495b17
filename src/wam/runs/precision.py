"""Numeric precision by measurement: `--optim.precision=auto|fp32|bf16|fp16`.

    prec = choose_precision("auto", device)   # once per process and device; prints nothing
    print(prec.line())                         # "precision: bf16 (auto: ...why...)" for the run's log
    with prec.autocast(): loss = model.loss(batch)

`auto` picks bf16 only where it is fast on the device it runs on:
* CUDA: bf16 when the GPU supports it natively (Ampere and later), else fp32;
* Apple MPS: fp32 (not measured);
* CPU: a one-off micro-benchmark (a 384x384 matmul and two 3x3 convs forward+backward, one strided,
  fp32 vs bf16 autocast, run alternately, best of 5: ~0.3 s on a CPU with native bf16, ~1.5 s on
  one without)
  decides: bf16 only when it is clearly faster (geometric-mean speed-up >= 1.15x, neither op below
  0.8x). CPUs without
  native bf16 run it 20-50x slower than fp32. The result is cached per machine in
  `~/.cache/wam/precision.json` (`WAM_CACHE_DIR` moves it), keyed by CPU model, torch version,
  thread count and the two variables that change which kernels run, `ONEDNN_MAX_CPU_ISA` and
  `ATEN_CPU_CAPABILITY`. Delete that file to measure again.

Forced choices are checked: bf16 on a GPU without it and fp16 on the CPU (no fast kernels; it
needs loss scaling) are refused with one line. fp16 on CUDA trains with a gradient scaler
(`grad_scaler`). Precision is autocast: weights and optimizer state stay fp32.
"""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from wam.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
ISA_VARS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
CLEARLY_FASTER = 1.15  # geometric-mean speed-up bf16 needs over fp32 on the CPU to be chosen ...
NEVER_SLOWER = 0.8  # ... with neither op clearly slower (timing noise on a busy machine is ~10-20%)


@dataclass(frozen=True)
class Precision:
    """What a process computes in on one device, and why."""

    name: str  # fp32 | bf16 | fp16
    device_type: str  # cpu | cuda | mps
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES.get(self.name, torch.float32)

    def autocast(self) -> AbstractContextManager:
        """Autocast to this precision on its device (nothing for fp32)."""
        if self.name == "fp32":
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler for fp16 training (None otherwise)."""
        return torch.amp.GradScaler(self.device_type) if self.name == "fp16" else None

    def line(self) -> str:
        return f"precision: {self.name} ({self.reason})"


def check_precision(name: str, flag: str = "--optim.precision") -> str:
    """`name` if it is a precision wam knows, else a ConfigError naming the choices."""
    if name not in PRECISIONS:
        raise ConfigError(f"{flag}: {name!r} is not a precision; choose one of {', '.join(PRECISIONS)}")
    return name


_CHOSEN: dict[tuple[str, str], Precision] = {}


def choose_precision(requested: str, device: torch.device | str = "cpu", flag: str = "--optim.precision") -> Precision:
    """The precision to run in on `device`: `requested` checked, or `auto` decided (once a process)."""
    requested = check_precision(requested, flag)
    device = torch.device(device)
    key = (requested, str(device))
    if key not in _CHOSEN:
        _CHOSEN[key] = _forced(requested, device, flag) if requested != "auto" else _auto(device)
    return _CHOSEN[key]


def _cuda_bf16(device: torch.device) -> bool:
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def _forced(name: str, device: torch.device, flag: str) -> Precision:
    kind = device.type
    if name == "bf16" and kind == "cuda" and not _cuda_bf16(device):
        raise ConfigError(f"{flag}=bf16: {torch.cuda.get_device_name(device)} has no bf16 support; "
                          f"use fp16 or fp32 (or auto)")
    if name == "fp16" and kind == "cpu":
        raise ConfigError(f"{flag}=fp16: the CPU has no fast fp16 training kernels; use fp32 or bf16 (or auto)")
    return Precision(name, kind, f"asked for with {flag}={name}")


def _auto(device: torch.device) -> Precision:
    kind = device.type
    if kind == "cuda":
        name = torch.cuda.get_device_name(device)
        if _cuda_bf16(device):
            return Precision("bf16", kind, f"auto: {name} supports bf16 natively")
        return Precision("fp32", kind, f"auto: {name} has no native bf16 (fp16 is there to ask for)")
    if kind != "cpu":
        return Precision("fp32", kind, f"auto: {kind} is not measured; fp32 is the safe choice")
    m = cpu_measurement()
    fast = m["bf16_speedup"] >= CLEARLY_FASTER and min(m["matmul_speedup"], m["conv_speedup"]) >= NEVER_SLOWER
    verdict = "clearly faster" if fast else "not clearly faster"
    why = (f"auto: bf16 {verdict} than fp32 on this CPU ({m['capability']}): matmul x{m['matmul_speedup']:.2f}, "
           f"conv x{m['conv_speedup']:.2f}, measured {m['measured']}{' (cached)' if m.get('cached') else ''}")
    return Precision("bf16" if fast else "fp32", kind, why)


# -- the CPU micro-benchmark -------------------------------------------------------------------
def cache_file() -> Path:
    root = os.environ.get("WAM_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wam"
    return Path(root) / "precision.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What the measurement depends on: CPU model, torch version, threads, the ISA variables."""
    isa = ", ".join(f"{v}={os.environ.get(v, '')}" for v in ISA_VARS)
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads | {isa}"


def _best_ms(fp32, bf16, repeats: int = 5) -> tuple[float, float]:
    """Best CPU times (ms, all threads of this process) of two versions of one op, run alternately:
    CPU time is what the op costs whatever else the machine runs (wall time on a busy 2-core machine
    varied 5x between runs); the minimum drops cache and page-fault noise. Stops after one round
    when bf16 is over 3x slower (emulated bf16: no need to time it five times)."""
    fp32(), bf16()  # warm-up (kernel selection, allocation)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((fp32, times[0]), (bf16, times[1])):
            t0 = time.process_time()  # CPU time of this process: what the op costs, not how busy the machine is
            fn()
            out.append(time.process_time() - t0)
        if min(times[1]) > 3 * min(times[0]):
            break
    return 1000 * min(times[0]), 1000 * min(times[1])


def measure_cpu() -> dict:
    """fp32 vs bf16-autocast time of a 384x384 matmul and of two 3x3 convs forward+backward, one
    32-channel, one strided 16 -> 32 (the tokenizer's downsampling; with 2 threads on a busy CPU its
    bf16 kernel was measured 18x slower than fp32 where the plain conv was 1.6x faster). Sized so that
    a step takes a few ms in fp32: large enough that thread start-up does not decide."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(384, 384, generator=g), torch.randn(384, 384, generator=g)
    convs = [torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Conv2d(16, 32, 3, stride=2, padding=1)]
    xs = [torch.randn(4, 32, 32, 32, generator=g, requires_grad=True),
          torch.randn(4, 16, 32, 32, generator=g, requires_grad=True)]

    def matmul(bf16: bool):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                a @ b
        return run

    def conv_step(bf16: bool):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                ys = [conv(x) for conv, x in zip(convs, xs)]
            sum(y.float().square().mean() for y in ys).backward()
        return run

    ms = {}
    for op, fn in (("matmul", matmul), ("conv", conv_step)):
        ms[f"{op}_fp32_ms"], ms[f"{op}_bf16_ms"] = _best_ms(fn(False), fn(True))
    mm, cv = ms["matmul_fp32_ms"] / ms["matmul_bf16_ms"], ms["conv_fp32_ms"] / ms["conv_bf16_ms"]
    return {**ms, "matmul_speedup": mm, "conv_speedup": cv, "bf16_speedup": (mm * cv) ** 0.5,
            "capability": torch.backends.cpu.get_cpu_capability(), "measured": time.strftime("%Y-%m-%d %H:%M")}


def cpu_measurement(refresh: bool = False) -> dict:
    """The micro-benchmark's result for this machine: from the cache, else measured and cached."""
    path, key = cache_file(), machine_key()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not refresh and isinstance(cache.get(key), dict):
        return {**cache[key], "cached": True}
    result = measure_cpu()
    cache[key] = result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: measure again next time
    return result
