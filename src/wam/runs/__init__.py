"""Plumbing every workflow shares, decided once per process: the device (`device`), the numeric
precision (`precision`), thread counts (`threads`), one writer per folder (`lock`), seeds and episode
generators (`seeding`), output folders made or refused with one line (`folders`). Importing this package imports no torch: `wam.runs.threads.quiet_openmp` must
run before torch is first imported."""
