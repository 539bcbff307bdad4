"""Ray glue for sweeps: search spaces (YAML) -> samplers -> one Tune experiment whose trials
are Ray Train jobs running the same `run_trial` as ``udatune train``.

space.py (validated space files) -> sample.py (Optuna define-by-run) -> settings.py (what a
sweep asks for, baselines, trial order) -> searcher.py, scheduler.py, callbacks.py -> sweep.py
(the driver) -> trainable.py (the Tune trial = a TorchTrainer) -> worker.py (each Train worker
runs `run_trial`), stopping.py (the stop board), timing.py (where a worker's time goes) ;
restore.py (resume) ; cluster.py (connect or start Ray) ; results.py (rows, paired gains) ;
store.py (the sweep folder, its one reader and writer) ; ray_compat.py (every private Ray name,
version-guarded).
"""
