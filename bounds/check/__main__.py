"""``python -m bounds.check RUN_DIR``: see :mod:`bounds.check.cli`."""

from .cli import main
from .jobs import keep_freed_memory

keep_freed_memory()  # this process and its forked workers only (docs/theory.md §14.7)
raise SystemExit(main())
