"""scripts/vp_tables.py: the paired differences of study cells (same scenes, by seed) that docs/results.md quotes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.scripts.conftest import load_script


@pytest.fixture(scope="module")
def vp():
    return load_script("vp_tables")


def write_cell(root: Path, run: str, successes: dict[str, list[int]]) -> None:
    eps = [{"task": t, "seed": 10_000 + k, "success": bool(s)} for t, row in successes.items() for k, s in enumerate(row)]
    (root / "cells" / run / "eval").mkdir(parents=True)
    (root / "cells" / run / "eval" / "eval_info.json").write_text(json.dumps({"episodes": eps}))


def test_pairs_are_taken_scene_by_scene_within_a_seed(vp, tmp_path):
    a = {0: {"t1": [1, 1, 0, 1], "t2": [0, 1, 1, 1]}, 1: {"t1": [1, 0, 0, 0], "t2": [1, 1, 0, 0]}}
    b = {0: {"t1": [1, 0, 0, 0], "t2": [0, 1, 0, 1]}, 1: {"t1": [1, 0, 0, 0], "t2": [0, 1, 0, 0]}}
    for name, seeds in (("A", a), ("B", b)):
        for seed, row in seeds.items():
            write_cell(tmp_path, f"{name}__d2__s{seed}", row)
    write_cell(tmp_path, "A__d5__s0", a[0])  # B has no 5-demo cell: no row there
    write_cell(tmp_path, "A__d2__s7", {"t1": [1, 1, 1, 1], "t2": [1, 1, 1, 1]})  # a seed B lacks: left out
    rows = vp.pair_rows([tmp_path], [("A", "B")], [2, 5], np.random.default_rng(0))
    assert [(r["demos"], r["seeds"]) for r in rows] == [(2, [0, 1])]
    r = rows[0]
    assert r["per_seed"] == pytest.approx([3 / 8, 1 / 8])  # seed 0: 3 scenes won, seed 1: 1, of 8 each
    mean, lo, hi, n = r["scenes"]
    assert (mean, n) == (pytest.approx(4 / 16), 16) and lo <= mean <= hi
    assert r["success_a"] == pytest.approx(9 / 16) and r["success_b"] == pytest.approx(5 / 16)
    assert "by seed +0.38, +0.12: +0.25" in vp.pair_table(rows)[2]


def test_a_tag_tells_two_studies_of_one_variant_apart(vp, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    write_cell(one, "A__d20__s0", {"t1": [0, 0, 1, 0]})
    write_cell(two, "A__d20__s0", {"t1": [1, 1, 1, 0]})
    vp.TAGS.clear()
    assert list(vp.cells([one, two], 20)) == ["A"]  # untagged, the later study's cell hides the earlier one's
    vp.TAGS[two] = "_2v"
    try:
        rows = vp.pair_rows([one, two], [("A_2v", "A")], [20], np.random.default_rng(0))
    finally:
        vp.TAGS.clear()
    assert rows[0]["scenes"][0] == pytest.approx(0.5) and rows[0]["success_a"] == pytest.approx(0.75)


def test_tasks_restricts_every_number_to_those_tasks(vp, tmp_path):
    """`--tasks`: the video-only tasks' success and differences, the other tasks' episodes left out."""
    write_cell(tmp_path, "A__d5__s0", {"window-open-v3": [1, 1, 0, 0], "reach-v3": [0, 0, 0, 0]})
    write_cell(tmp_path, "B__d5__s0", {"window-open-v3": [0, 0, 0, 0], "reach-v3": [1, 1, 1, 1]})
    vp.ONLY.update({"window-open"})
    try:
        rows = vp.pair_rows([tmp_path], [("A", "B")], [5], np.random.default_rng(0))
    finally:
        vp.ONLY.clear()
    assert rows[0]["scenes"][0] == pytest.approx(0.5) and rows[0]["scenes"][3] == 4 and rows[0]["success_b"] == 0
    assert vp.pair_rows([tmp_path], [("A", "B")], [5], np.random.default_rng(0))[0]["scenes"][0] == pytest.approx(-0.25)


def test_wilson_bounds_stay_in_zero_one(vp):
    """0 of 20 prints [0.00, 0.16], not [-0.00, 0.16]; 20 of 20 ends at 1."""
    assert vp.wilson(0, 20)[0] == 0.0 and f"{vp.wilson(0, 20)[0]:.2f}" == "0.00" and vp.wilson(20, 20)[1] == 1.0
    assert vp.wilson(7, 20) == pytest.approx((0.1812, 0.5671), abs=1e-4)


def test_a_second_evaluation_and_a_difference_of_differences(vp, tmp_path):
    """`--also eval_paraphrase-1=_instr` reads each cell's training-instruction evaluation as `<variant>_instr`; a
    side `X-Y` pairs the paraphrase's cost of one policy with another's, scene by scene."""
    write_cell(tmp_path, "A__d20__s0", {"t1": [1, 0, 1, 0]})  # A with a paraphrase
    write_cell(tmp_path, "B__d20__s0", {"t1": [0, 0, 1, 0]})
    for run, row in (("A__d20__s0", [1, 1, 1, 0]), ("B__d20__s0", [1, 1, 1, 1])):  # with the training instruction
        eps = [{"task": "t1", "seed": 10_000 + k, "success": bool(s)} for k, s in enumerate(row)]
        (tmp_path / "cells" / run / "eval_paraphrase-1").mkdir()
        (tmp_path / "cells" / run / "eval_paraphrase-1" / "eval_info.json").write_text(json.dumps({"episodes": eps}))
    vp.ALSO["eval_paraphrase-1"] = "_instr"
    try:
        rows = vp.pair_rows([tmp_path], [("A", "A_instr"), ("A-A_instr", "B-B_instr")], [20], np.random.default_rng(0))
    finally:
        vp.ALSO.clear()
    assert rows[0]["scenes"][0] == pytest.approx(-0.25) and rows[0]["success_b"] == pytest.approx(0.75)
    # A loses 1 of 4 scenes to the paraphrase, B 3 of 4: A's cost is 0.5 smaller
    assert rows[1]["success_a"] == pytest.approx(-0.25) and rows[1]["success_b"] == pytest.approx(-0.75)
    assert rows[1]["scenes"][0] == pytest.approx(0.5) and rows[1]["scenes"][3] == 4
    assert vp.pair_rows([tmp_path], [("A-A_instr", "B")], [20], np.random.default_rng(0)) == []  # no _instr: no row
