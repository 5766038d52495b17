# The two commands of the README. Both set everything up first (scripts/setup.sh).
.PHONY: setup demo data-demo test test-all bench

setup:
	@bash scripts/setup.sh

# The main job, small and embedded: `wam quickstart` (collect, pretrain, fine-tune a WAM and the
# action-only baseline at equal CPU time, evaluate both, write the report). Resumes if re-run.
demo: setup
	.venv/bin/wam quickstart --out=outputs/quickstart

# A look at the data alone: a few Meta-World demos, their summary, a contact sheet and a video.
data-demo: setup
	.venv/bin/wam collect --tasks=mw5 --episodes=3 --out=outputs/demo/data
	.venv/bin/wam data info outputs/demo/data
	.venv/bin/wam data view outputs/demo/data --episode 0 --out outputs/demo/episode0.png
	.venv/bin/wam data view outputs/demo/data --episode 0 --out outputs/demo/episode0.mp4

# The tests CI runs (slow ones excluded; see `test-all`).
test: setup
	.venv/bin/python -m pytest -q

test-all: setup
	.venv/bin/python -m pytest -q -m ""

bench: setup
	.venv/bin/python benchmarks/reader_throughput.py
