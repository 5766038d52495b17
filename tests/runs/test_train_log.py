"""A run's log.csv: rows past a resumed step are dropped, other ranks write nothing, curves.png follows."""

from __future__ import annotations

from wam.runs.train_log import CsvLog, log_series, read_log


def test_a_resumed_log_drops_the_rows_past_its_step_and_keeps_sparse_columns(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLog(path, resume_step=0)
    for step in range(1, 6):
        log.add({"step": step, "loss": 1.0 / step, **({"val_loss": 0.5} if step % 2 == 0 else {})})
    log.flush()
    assert (tmp_path / "curves.png").stat().st_size > 0
    resumed = CsvLog(path, resume_step=3)  # killed after step 5, resumed from the checkpoint of step 3
    assert [int(r["step"]) for r in resumed.rows] == [1, 2, 3]
    resumed.add({"step": 4, "loss": 0.2})
    resumed.flush()
    rows = read_log(path)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert log_series(rows, "val_loss") == [(2, 0.5)]  # only the rows that have it


def test_other_ranks_write_nothing(tmp_path):
    log = CsvLog(tmp_path / "log.csv", resume_step=0, write=False)
    log.add({"step": 1, "loss": 1.0})
    log.flush()
    assert not any(tmp_path.iterdir()) and read_log(tmp_path / "log.csv") == []
