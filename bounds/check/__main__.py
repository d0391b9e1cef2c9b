"""``python -m bounds.check RUN_DIR``: see :mod:`bounds.check.cli`."""

from .cli import main
from .jobs import keep_freed_memory, no_huge_page_advice, raise_open_files_limit

# this process and its forked workers only (docs/theory.md §14.7)
keep_freed_memory()
no_huge_page_advice()
raise_open_files_limit()
raise SystemExit(main())
