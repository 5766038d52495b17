# twelfth session, 2026-12-03, code at the session's HEAD; run from /work/scratch with the repo's venv
export OMP_NUM_THREADS=1 PYTHONPATH=/work/main/src
python goal_spread.py              # -> goal_spread.log
python single_view_ceiling.py      # -> single_view_ceiling.log
python kp_probe.py 128 c3 600 all  # -> kp_probe.log (first block)
python kp_probe.py 64 cf 600 all   # -> kp_probe.log (second block)
python kp_probe.py 64 dil 600 all  # -> kp_probe.log (third line; stopped after pick-place: 172 s a task)
