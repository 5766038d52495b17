"""The study report: sentences computed from hand-made summaries, and a fake study rendered in headless
Chromium (plots drawn, videos decoded by the browser)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from wam.cli import main
from wam.data.video import encode_video
from wam.evaluate import wilson
from wam.report import findings, headline_markdown, write_report

TASKS = ("reach-v3", "push-v3")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def cell(variant: str, paradigm: str, wins: int, n: int = 20, demos: int = 10, seed: int = 0, **extra) -> dict:
    half = n // 2
    per_task = {t: {"success": w / half, "ci95": list(wilson(w, half)), "episodes": half}
                for t, w in zip(TASKS, (wins // 2, wins - wins // 2))}
    return {"variant": variant, "paradigm": paradigm, "integration": "tokens", "init": "pretrained",
            "video_weight": 1.0, "demos": demos, "seed": seed, "run": f"cells/{variant}__d{demos}__s{seed}",
            "success": wins / n, "ci95": list(wilson(wins, n)), "episodes": n, "per_task": per_task,
            "ms_per_chunk": {"conv_reference": 4.0, "action_only": 6.0}.get(paradigm, 40.0),
            "train_seconds": 100.0, "steps": 500, "extra": extra}


def summary(*cells: dict) -> dict:
    return {"study": "t", "question": "q?", "cells": list(cells)}


# -- the computed sentences --------------------------------------------------------------------------------
def test_reference_beats_every_wam_is_said_first():
    s = findings(summary(cell("joint", "joint", 8), cell("repr", "representation", 10),
                         cell("ao", "action_only", 6), cell("dp", "conv_reference", 19)))
    assert s[0].startswith("The outside reference dp (0.95") and "beats every WAM" in s[0]
    assert "best WAM, repr (0.50" in s[0] and "0.45 lower" in s[0] and "do not overlap" in s[0]
    assert "repr" in s[1] and "ao" in s[1] and s[1].endswith("cannot tell them apart.")


def test_reference_not_beating_a_wam():
    s = findings(summary(cell("repr", "representation", 12), cell("dp", "conv_reference", 11),
                         cell("ao", "action_only", 11)))
    assert "beats every WAM" not in " ".join(s) and "matches or beats the outside reference dp" in s[0]
    far = findings(summary(cell("repr", "representation", 19), cell("dp", "conv_reference", 4)))
    assert "), beats the outside reference dp" in far[0] and "do not overlap" in far[0]


def test_intervals_overlap_or_not_pooled_over_seeds():
    # 40/40 vs 0/40 pooled over two seeds: far apart; the WAM is ahead
    apart = findings(summary(cell("repr", "representation", 20, seed=0), cell("repr", "representation", 20, seed=1),
                             cell("ao", "action_only", 0, seed=0), cell("ao", "action_only", 0, seed=1)))
    assert len(apart) == 1 and "do not overlap" in apart[0] and "the best WAM is ahead" in apart[0]
    assert "repr (1.00 [0.91, 1.00])" in apart[0]  # Wilson on 40/40, not on 20/20
    behind = findings(summary(cell("repr", "representation", 1), cell("ao", "action_only", 19)))
    assert "the baseline is ahead" in behind[0]
    close = findings(summary(cell("repr", "representation", 11), cell("ao", "action_only", 9)))
    assert "overlap at 10 demos" in close[0] and "cannot tell" in close[0]


def test_headline_is_the_largest_demo_size_and_baseline_may_be_missing():
    s = findings(summary(cell("repr", "representation", 20, demos=5), cell("ao", "action_only", 0, demos=5),
                         cell("repr", "representation", 10, demos=50), cell("ao", "action_only", 10, demos=50)))
    assert "at 50 demos" in s[0] and "overlap" in s[0] and "do not" not in s[0]
    assert "no action-only baseline" in findings(summary(cell("repr", "representation", 5)))[0]


def test_cells_trained_in_different_arithmetic_are_named():
    """A study resumed on another machine may hold bf16 and fp32 cells: equal steps, unequal numerics."""
    fp32, bf16 = ({"runtime": {"device": "cpu", "precision": p, "torch": "2.13.0+cpu"}} for p in ("fp32", "bf16"))
    same = findings(summary(cell("repr", "representation", 12) | fp32, cell("ao", "action_only", 9) | fp32))
    assert not any("arithmetic" in line for line in same)
    mixed = findings(summary(cell("repr", "representation", 12) | bf16, cell("ao", "action_only", 9) | fp32,
                             cell("ao", "action_only", 9, seed=1) | fp32, cell("dp", "conv_reference", 9)))
    assert mixed[-1].startswith("The cells did not all train in the same arithmetic: fp32 on cpu (2 cells), "
                                "bf16 on cpu (1 cell).")
    resumed = {"runtime": {**fp32["runtime"], "earlier": [{"device": "cpu", "precision": "bf16", "torch": "2.13.0"}]}}
    within = findings(summary(cell("repr", "representation", 12) | resumed, cell("ao", "action_only", 9) | fp32))
    assert within[-1].startswith("The cells did not all train in the same arithmetic: 1 cell changed arithmetic "
                                 "when resumed (runtime.json's earlier).")


# -- a fake study rendered in headless Chromium ------------------------------------------------------------
def fake_study(root: Path) -> Path:
    """3 variants (a WAM, action-only, the outside reference) x 2 demo sizes x 2 seeds, with logs and videos."""
    rng = np.random.default_rng(0)
    cells = []
    for variant, paradigm, rate in (("repr", "representation", 0.45), ("ao", "action_only", 0.3),
                                    ("dp", "conv_reference", 0.7)):
        for demos in (5, 20):
            for seed in (0, 1):
                wins = int(round(20 * min(rate * (1.3 if demos == 20 else 0.8) + 0.05 * seed, 1)))
                c = cell(variant, paradigm, wins, demos=demos, seed=seed, offline_action_mse=0.1 + 0.01 * seed)
                run = root / c["run"]
                (run / "eval").mkdir(parents=True)
                steps = np.arange(10, 210, 10)
                loss = 2.0 * np.exp(-steps / (60 + 20 * seed)) + 0.05 + 0.02 * rng.random(len(steps))
                rows = ["step,loss,lr,val_loss"] + [f"{s},{v:.4f},0.0003,{v * 1.2:.4f}" if s % 50 == 0 else
                                                     f"{s},{v:.4f},0.0003," for s, v in zip(steps, loss)]
                (run / "log.csv").write_text("\n".join(rows) + "\n")
                cells.append(c)
    for variant in ("repr", "ao", "dp"):
        evald = root / f"cells/{variant}__d20__s0/eval"
        frames = np.zeros((24, 32, 32, 3), np.uint8)
        for t in range(24):
            frames[t, :, :, 0] = 40 + 8 * t
            frames[t, 8:20, t:t + 8, 1:] = 255
        encode_video(frames, evald / "eval_episode_0.mp4", 10)
        if variant == "repr":  # only the WAM imagines: real | imagined
            encode_video(np.concatenate([frames, np.full((24, 32, 2, 3), 255, np.uint8), frames[::-1]], axis=2),
                         evald / "pred_episode_0.mp4", 10)
        (evald / "eval_info.json").write_text(json.dumps({
            "config": {"episodes": 10, "seed": 10_000}, "per_task": {t: {} for t in TASKS},
            "episodes": [{"task": "reach-v3", "seed": 10_000, "success": True}]}))
    (root / "summary.json").write_text(json.dumps({"study": "fake", "question": "Does video help?",
                                                   "commit": "abc1234", "date": "2025-01-01", "cells": cells}))
    return root


def test_report_files_and_markdown(tmp_path):
    (tmp_path / "report_files").mkdir()
    (tmp_path / "report_files/old__d5__s0__eval_episode_0.mp4").write_bytes(b"")  # from an earlier headline
    html_path, md_path = write_report(fake_study(tmp_path))
    files = {p.name for p in (tmp_path / "report_files").iterdir()}
    assert "old__d5__s0__eval_episode_0.mp4" not in files
    assert {"success_vs_demos.png", "success_vs_latency.png", "training_curves.png",
            "repr__d20__s0__pred_episode_0.mp4", "ao__d20__s0__eval_episode_0.mp4"} <= files
    md = md_path.read_text()
    assert md.index("The outside reference dp") < md.index("| variant")  # said at the top
    assert "![success vs demos" in md and "(report_files/repr__d20__s0__pred_episode_0.mp4)" in md
    assert "real | imagined: episode 0: reach-v3, seed 10000, success" in md
    assert re.search(r"\| \*\*dp\*\* \| \*\*conv_reference · tokens\*\* .*\| \*\*0\.93 \[0\.80, 0\.97\]\*\*", md)
    page = html_path.read_text()
    assert page.count("<video ") == 4 and "class=best" in page and "offline_action_mse" in page
    assert main(["report", str(tmp_path)]) == 0
    head = headline_markdown(tmp_path)  # the tables docs/results.md quotes: the report's own, up to the per-variant part
    assert head.startswith("## Results at 20 demos per task") and "### Per task" in head
    assert all(part in md for part in head.split("\n\n"))
    assert "Every variant" not in head


def _chromium(*args: str) -> str:
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--mute-audio", "--window-size=1200,3000", "--virtual-time-budget=5000", *args],
                         capture_output=True, text=True, timeout=120)
    return out.stdout


PROBE = """<script>function probe() {
  document.querySelectorAll('img').forEach(im => { const r = im.getBoundingClientRect();
    im.dataset.probe = [im.naturalWidth, r.left + scrollX, r.top + scrollY, r.width, r.height].map(Math.round).join(','); });
  document.querySelectorAll('video').forEach(v => { if (v.readyState >= 2) v.dataset.ready = v.videoWidth + 'x' + v.videoHeight;
    if (v.error) v.dataset.error = v.error.code; });
}
document.querySelectorAll('video').forEach(v => ['loadeddata', 'error'].forEach(e => v.addEventListener(e, probe)));
window.addEventListener('load', probe); setInterval(probe, 100);</script>"""


def test_headline_table_shows_the_studies_extra_measurements():
    from wam.report import _tables, group_cells

    cells = [cell("idm", "inverse_dynamics", 12, paraphrase=0, offline_mse_imagined=0.03,
                  **{"success_eval_paraphrase-1": 0.5, "ci95_eval_paraphrase-1": [0.3, 0.7]},
                  offline_mse_imagined_ci95=[0.02, 0.04], offline_mse_real=0.01, offline_real_minus_imagined=-0.02),
             cell("ao", "action_only", 10, paraphrase=0, offline_mse_imagined=0.05)]
    head, rows = _tables(group_cells(cells), list(TASKS))[1][1:3]
    assert head[4] == "success, held-out paraphrase 0 [95% CI]"
    assert head[5:9] == ["success, training instruction", "held-out action MSE", "held-out action MSE, real future",
                         "real − imagined future"]
    assert rows[0][5:9] == ["0.50 [0.30, 0.70]", "0.0300 [0.0200, 0.0400]", "0.0100", "-0.0200"]
    assert rows[1][5] == "—" and rows[1][7:9] == ["—", "—"]
    plain = _tables(group_cells([cell("ao", "action_only", 10)]), list(TASKS))[1][1]
    assert "held-out action MSE" not in plain and plain[4] == "success [95% CI]"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium; scripts/setup.sh does)")
def test_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    html_path, _ = write_report(fake_study(tmp_path))
    shot = tmp_path / "screenshot.png"
    _chromium(f"--screenshot={shot}", html_path.as_uri())
    probed = html_path.with_name("probed.html")  # same folder, so report_files/ resolves alike
    probed.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--dump-dom", probed.as_uri())

    videos = re.findall(r"<video [^>]*>", dom)
    assert len(videos) == 4 and all('data-ready="' in v for v in videos), videos  # every mp4 decoded a frame
    assert {re.search(r'data-ready="(\w+)"', v).group(1) for v in videos} == {"32x32", "66x32"}
    rects = [[int(x) for x in p.split(",")] for p in re.findall(r'data-probe="([-\d,]+)"', dom)]
    assert len(rects) == 3 and all(r[0] > 0 for r in rects), rects  # all three PNGs loaded

    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[:2] == (3000, 1200) and image.std() > 20  # not blank
    _, x, y, w, h = rects[0]  # the first plot, where the browser laid it out
    region = image[y:y + h, x:x + w].reshape(-1, 3)
    assert len(np.unique(region, axis=0)) > 200  # lines, markers, error bars and text in several colours
    assert len({tuple(c) for c in region[::7] if c.max() - c.min() > 60}) > 20  # coloured, not just grey
    if os.environ.get("WAM_REPORT_SCREENSHOT"):  # keep it to look at (docs/media/report_screenshot.png)
        shutil.copyfile(shot, os.environ["WAM_REPORT_SCREENSHOT"])


def test_report_survives_a_failed_cell_without_files(tmp_path):
    failed = {**cell("joint", "joint", 0, seed=1), "success": None, "ci95": None, "episodes": 0, "per_task": {},
              "ms_per_chunk": None, "run": "cells/missing"}
    (tmp_path / "summary.json").write_text(json.dumps(summary(cell("joint", "joint", 5), failed,
                                                              cell("ao", "action_only", 4))))
    html_path, md_path = write_report(tmp_path)
    md = md_path.read_text()
    # the failed seed adds no episodes, and is counted as failed
    assert "| **joint** | **joint · tokens** | **pretrained** | **1** | **0.25 [0.11, 0.47]** | **20** |" in md
    assert "**1 (1 failed)** |" in md
    assert "No episode videos" in md and "overlap at 10 demos" in md
