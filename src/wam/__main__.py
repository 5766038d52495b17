"""`python -m wam` is the `wam` command line."""

from wam.cli import main

raise SystemExit(main())
