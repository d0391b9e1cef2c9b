"""``python -m bounds.selftest [--bound NAME ...] [--examples N] [--seed S]``.

Runs the tier properties of :mod:`bounds.testing` on the installed bounds -- built-in and
plug-ins of the ``cft_bounds.bounds`` entry point -- without the repository's tests
(docs/theory.md §6, §11). Prints one line per (bound, property) and, for a failure, the
minimal (shrunk) counterexample.

Exit codes: 0 every property holds, 1 a counterexample was found, 2 bad usage (one line
on stderr: unknown bound name, bad number, hypothesis not installed, a refused plug-in
named with ``--bound``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import NoReturn

__all__ = ["main", "build_parser"]

PROG = "python -m bounds.selftest"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"{PROG}: error: {' '.join(message.split())} (see --help)\n")
        raise SystemExit(2)


def _count(text: str) -> int:
    try:
        val = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if val < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {val}")
    return val


def _seed(text: str) -> int:
    try:
        val = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= val < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {val}")
    return val


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Check every installed retrieval-error bound "
                "(built-in and plug-ins) against the properties of its declared tier. "
                "Exit 0: all hold; 1: a counterexample (printed, shrunk); 2: bad usage.")
    p.add_argument("--bound", action="append", default=None, metavar="NAME",
                   help="only this bound (repeatable; default: every registered bound)")
    p.add_argument("--examples", type=_count, default=25, metavar="N",
                   help="generated examples per property (default 25; the costly PAC and "
                        "assumption properties run a fraction of them)")
    p.add_argument("--seed", type=_seed, default=0, metavar="S",
                   help="hypothesis random seed (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the self-test; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        sys.stderr.write(f"{PROG}: error: hypothesis is not installed "
                         "(pip install 'cft-bounds[testing]')\n")
        return 2
    from . import registry
    from .testing import properties_for, run_property

    for msg in registry.load_plugins():
        sys.stderr.write(f"{PROG}: warning: {msg}\n")
    names = args.bound or list(registry.REGISTRY)
    unknown = [n for n in names if n not in registry.REGISTRY]
    if unknown:
        refused = [e for e in registry.PLUGIN_ERRORS if any(n in e for n in unknown)]
        why = f"; {refused[0]}" if refused else ""
        sys.stderr.write(f"{PROG}: error: --bound: unknown bound name(s) {unknown}; known: "
                         f"{','.join(registry.REGISTRY)}{why}\n")
        return 2
    failures = 0
    for name in names:
        b = registry.REGISTRY[name]
        origin = registry.ORIGIN.get(name, "")
        props = properties_for(b)
        if not props:
            print(f"skip {name} [{b.tier}]: no property applies to what it reads {b.reads}")
            continue
        for prop in props:
            t0 = time.perf_counter()
            cex = run_property(prop, b, examples=args.examples, seed_=args.seed)
            dt = time.perf_counter() - t0
            if cex is None:
                print(f"ok   {name} [{b.tier}] {prop.name} ({prop.examples(args.examples)} "
                      f"examples, {dt:.1f} s){'' if origin == 'built-in' else f' {origin}'}")
            else:
                failures += 1
                print(cex.render())
            sys.stdout.flush()
    print(f"{PROG}: {len(names)} bound(s), "
          + ("all properties hold" if not failures else f"{failures} counterexample(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
