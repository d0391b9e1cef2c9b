"""``python -m cft``: see :mod:`cft.cli`."""

from cft.cli import main

raise SystemExit(main())
