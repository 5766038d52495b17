"""Plumbing every workflow shares, decided once per process: the device (`device`), the numeric
precision (`precision`) and thread counts (`threads`). Importing this package imports no torch:
`wam.runs.threads.quiet_openmp` must run before torch is first imported."""
