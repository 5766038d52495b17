"""Pick an offscreen OpenGL backend for MuJoCo before it is imported.

MuJoCo reads ``MUJOCO_GL`` (and PyOpenGL reads ``PYOPENGL_PLATFORM``) when they are first
imported, so :func:`configure_gl_backend` must run before ``import mujoco`` (or anything that
imports it: metaworld, gymnasium's MuJoCo envs) in the process. wam's environment classes call it
themselves before their lazy imports.

If ``MUJOCO_GL`` is already set it is kept. Otherwise "egl" and then "osmesa" are probed, each in a
short subprocess that creates and frees a tiny GL context, and the first that works is written to
``os.environ``. Child processes inherit the variable and therefore skip the probe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

from wam.errors import WamError

CANDIDATES: tuple[str, ...] = ("egl", "osmesa")
"""Offscreen backends tried, in order."""

DEBIAN_PACKAGES: dict[str, str] = {
    "egl": "libegl1 and libgl1 (Mesa EGL/GL)",
    "osmesa": "libosmesa6 (Mesa OSMesa, software)",
}
"""Which Debian packages provide each backend's shared libraries."""

PROBED_VAR = "WAM_GL_PROBED"
"""Set to the chosen backend after an automatic probe (informational; MUJOCO_GL is the cache)."""

_PROBE_TIMEOUT_S = 60.0

# Creates a GL context, makes it current, uploads a tiny model (MjrContext) and frees both.
_PROBE_CODE = """
import mujoco
ctx = mujoco.GLContext(16, 16)
ctx.make_current()
model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='.1'/></worldbody></mujoco>")
con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
con.free()
ctx.free()
print("ok")
"""


def _probe(backend: str) -> tuple[bool, str]:
    """Try `backend` in a subprocess; return (worked, what it printed)."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE],
            env=env,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {_PROBE_TIMEOUT_S:.0f} s"
    output = (proc.stdout + proc.stderr).strip()
    worked = proc.returncode == 0 and output.splitlines()[-1:] == ["ok"]
    return worked, output


def _tail(text: str, lines: int = 3) -> str:
    """The last few lines of `text`, on one line."""
    return " | ".join(text.splitlines()[-lines:]) or "(no output)"


def _set_backend(backend: str) -> None:
    """Write `backend` to MUJOCO_GL and the matching PYOPENGL_PLATFORM."""
    os.environ["MUJOCO_GL"] = backend
    os.environ["PYOPENGL_PLATFORM"] = backend


def configure_gl_backend() -> str:
    """Make sure ``MUJOCO_GL`` names a working offscreen backend and return it.

    Call this before mujoco is imported in the process. An existing ``MUJOCO_GL`` is kept (and
    ``PYOPENGL_PLATFORM`` is filled in to match if unset). Otherwise "egl" then "osmesa" are probed
    in subprocesses; the first that works is set in ``os.environ`` (so child processes inherit it)
    and returned.

    Raises:
        WamError: if no backend works; the message lists each backend's output and the Debian
            packages that provide it.
    """
    backend = os.environ.get("MUJOCO_GL")
    if backend:
        if backend in CANDIDATES:
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        return backend
    if "mujoco" in sys.modules:
        warnings.warn(
            "configure_gl_backend() was called after mujoco was imported; MUJOCO_GL will be set "
            "but mujoco.GLContext may already be bound to another backend. Call it first.",
            RuntimeWarning,
            stacklevel=2,
        )
    outputs: dict[str, str] = {}
    for candidate in CANDIDATES:
        worked, output = _probe(candidate)
        if worked:
            _set_backend(candidate)
            os.environ[PROBED_VAR] = candidate
            return candidate
        outputs[candidate] = output
    tried = "; ".join(f"{name}: {_tail(out)}" for name, out in outputs.items())
    packages = "; ".join(f"{name} needs {pkgs}" for name, pkgs in DEBIAN_PACKAGES.items())
    raise WamError(
        f"no offscreen OpenGL backend works for MuJoCo (tried {', '.join(CANDIDATES)}). "
        f"What each printed: {tried}. Install one (Debian/Ubuntu: {packages}, e.g. "
        f"`apt-get install -y libosmesa6`) or set MUJOCO_GL yourself."
    )
