"""``python -m bounds.check RUN_DIR``: see :mod:`bounds.check.cli`."""

from .cli import main

raise SystemExit(main())
