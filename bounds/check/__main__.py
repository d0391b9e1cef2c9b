"""``python -m bounds.check RUN_DIR``: see :mod:`bounds.check.cli`."""

from .cli import main
from .jobs import memory_settings, raise_open_files_limit

# this process and its forked workers only (docs/theory.md §14.7)
memory_settings()
raise_open_files_limit()
raise SystemExit(main())
