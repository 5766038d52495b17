"""Checkpoint bad inputs, before/after: `wam eval --policy=<damaged copy>` with two checkouts' code.

    .venv/bin/python benchmarks/checkpoint_bad_inputs.py BEFORE_SRC BEFORE_POLICY AFTER_SRC AFTER_POLICY

Each case copies a policy run to /tmp/relbad/, damages one file of its latest checkpoint (bit flip,
truncation to half, zero bytes, deletion, broken JSON) and runs the real CLI with PYTHONPATH set to
each checkout's src/; the table (exit status and the last stderr line) goes to
benchmarks/results/checkpoint_bad_inputs.md. BEFORE_POLICY should be a run made by the BEFORE code.
"""
import os, shutil, subprocess, sys, json
from pathlib import Path
PY = sys.executable
def last(run):
    return run / "checkpoints" / (run / "checkpoints/last").read_text().strip()
def flip(p):
    d = bytearray(p.read_bytes()); m = len(d) // 2; d[m:m+8] = bytes(b ^ 0xFF for b in d[m:m+8]); p.write_bytes(bytes(d))
DAMAGE = {"corrupt": flip, "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
          "zero-byte": lambda p: p.write_bytes(b""), "missing": lambda p: p.unlink(),
          "corrupt-json": lambda p: p.write_text(p.read_text()[:-7] + "{,,")}
CASES = [(f, d) for f in ("model.safetensors", "ema.safetensors") for d in ("corrupt", "truncated", "zero-byte", "missing")]
CASES += [("state.json", "corrupt-json"), ("config.yaml", "missing")]
def run(src, policy, name, damage, tag):
    copy = Path(f"/tmp/relbad/{tag}_{name}_{damage}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(policy, copy, ignore=shutil.ignore_patterns("eval*", "probe"))
    DAMAGE[damage](last(copy) / name)
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([PY, "-m", "wam", "eval", f"--policy={copy}", "--episodes=1", "--max_steps=2", "--videos=0", "--workers=1"],
                       capture_output=True, text=True, env=env, timeout=600)
    err = r.stderr.strip().splitlines()
    if "Traceback" in r.stderr:
        what = "traceback: " + err[-1][:110]
    else:
        what = (err[-1] if err else r.stdout.strip().splitlines()[-1])[:160]
    return r.returncode, what.replace(str(copy), "P").replace("|", "/")
rows = ["| file | damage | before | after |", "|---|---|---|---|"]
for name, damage in CASES:
    b = run(sys.argv[1], Path(sys.argv[2]), name, damage, "before")
    a = run(sys.argv[3], Path(sys.argv[4]), name, damage, "after")
    rows.append(f"| {name} | {damage} | exit {b[0]}: {b[1]} | exit {a[0]}: {a[1]} |")
    print(rows[-1], flush=True)
Path(__file__).with_name("results").joinpath("checkpoint_bad_inputs.md").write_text(
    f"# Damaged checkpoint files through `wam eval`\n\ncommand: `{' '.join(sys.argv)}`\n\n" + "\n".join(rows) + "\n")
