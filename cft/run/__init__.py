"""Stage 5, run: configuration resolution (:mod:`.resolve`), the task loop
(:mod:`.runner`), its split representations (:mod:`.representations`), one evaluation step
(:mod:`.step`), metrics (:mod:`.metrics`, :mod:`.step_metrics`), the run directory
(:mod:`.rundir`) and the console ledger (:mod:`.ledger`)."""
