"""Stage 6, experiments: sweeps (:mod:`.sweep_spec`, :mod:`.sweep`), tables and plots over
seeds (:mod:`.report`) and the notebooks' run view (:mod:`.analysis`)."""
