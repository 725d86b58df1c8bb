"""Hyperparameter sweeps on Optuna: ``rnnlab sweep FILE`` and ``rnnlab sweep report DIR``.

A sweep file (:mod:`rnnlab.sweep.spec`) names a task, fixed settings and a search space; every
trial is a normal training run (:mod:`rnnlab.sweep.run`) in ``DIR/trials/NNNN``, its outcome kept
in an Optuna study (SQLite in ``DIR`` by default, or any database URL Optuna takes), so a sweep
resumes and workers on several machines share it. :mod:`rnnlab.sweep.report` tabulates a study:
best trials, per-value statistics with Welch's t-test against a reference value (Greff et al.'s
protocol), fANOVA importances and plots. Needs the ``sweep`` extra: ``pip install rnnlab[sweep]``.
"""

from rnnlab.sweep.spec import SweepSpec, load_spec

__all__ = ["SweepSpec", "load_spec"]
