"""Ray glue for sweeps: search spaces (YAML) -> samplers -> one Tune experiment whose trials
are Ray Train jobs running the same `run_trial` as ``udatune train``.

space.py (validated space files) -> sample.py (Optuna define-by-run) -> sweep.py (searcher,
scheduler, baselines, files) -> trainable.py (the Tune trial = a TorchTrainer) ;
cluster.py (connect or start Ray) ; results.py (rows, paired gains, ranking).
"""
