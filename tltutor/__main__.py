"""Run the command line: ``python -m tltutor --help``."""

from tltutor.cli import main

raise SystemExit(main())
