"""``rnnlab sweep report DIR``: what a study found.

Printed (and written to ``DIR/report/report.md``): the best trials; for every categorical
setting of the space, the test metric of each value's completed trials (count, best, quartiles,
mean and spread) with Welch's t-test of each value against the reference value, Bonferroni-
corrected over the values compared (Greff et al. 2017's protocol; the ``reference`` of the sweep
file, else the first value listed); and the settings' importances by Optuna's fANOVA (which
needs scikit-learn). Plots in ``DIR/report/``: ``history.png`` (objective per trial and best so
far), ``importances.png``, and ``box_<setting>.png`` per categorical setting.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import ConfigError
from rnnlab.sweep.run import SPEC_FILE, open_study, require_optuna
from rnnlab.sweep.spec import SweepSpec

SIGNIFICANCE = 0.05
BEST_SHOWN = 10


def load_sweep(directory: Path) -> tuple[SweepSpec, Any]:
    """The sweep file a directory was started with, and its study."""
    path = directory / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{directory} is not a sweep directory (no {SPEC_FILE}); run a sweep")
    spec = SweepSpec(**json.loads(path.read_text()))
    return spec, open_study(spec, directory, create=False)


def score(trial, metric: str) -> float:
    """A completed trial's test metric, or its objective (best validation) without a test."""
    return float(trial.user_attrs.get(f"test_{metric}", trial.value))


def compare(groups: dict[Any, list[float]], reference: Any) -> dict[Any, float]:
    """Bonferroni-corrected p-values of Welch's t-test of every group against ``reference``
    (``nan`` where a group has fewer than 2 values)."""
    from scipy.stats import ttest_ind

    others = [k for k in groups if k != reference]
    base = groups.get(reference, [])
    p_values = {}
    for key in others:
        values = groups[key]
        if len(values) < 2 or len(base) < 2:
            p_values[key] = math.nan
            continue
        p = float(ttest_ind(values, base, equal_var=False).pvalue)
        p_values[key] = min(1.0, p * len(others)) if math.isfinite(p) else math.nan
    return p_values


def variant_table(
    groups: dict[Any, list[float]], reference: Any, p_values: dict[Any, float], mode: str
) -> list[str]:
    """Markdown rows: per value, n, best, quartiles, mean +- std, p against the reference."""
    rows = [
        "| value | n | best | q1 | median | q3 | mean +- std | p vs " + f"{reference} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = groups.get(reference, [])
    for key, values in groups.items():
        if not values:
            rows.append(f"| {key} | 0 | | | | | | |")
            continue
        v = np.asarray(values)
        best = v.min() if mode == "min" else v.max()
        q1, median, q3 = np.percentile(v, [25, 50, 75])
        spread = f"{v.mean():.4f} +- {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"
        p = p_values.get(key)
        if key == reference:
            shown = "(reference)"
        elif p is None or math.isnan(p):
            shown = "n/a (< 2 trials)"
        else:
            worse = (v.mean() > np.mean(base)) == (mode == "min")
            verdict = (" worse" if worse else " better") if p < SIGNIFICANCE else ""
            shown = f"{p:.3g}{verdict}"
        rows.append(
            f"| {key} | {len(v)} | {best:.4f} | {q1:.4f} | {median:.4f} | {q3:.4f} | {spread} "
            f"| {shown} |"
        )
    return rows


def importances(study) -> dict[str, float] | str:
    """fANOVA importances, or the reason there are none."""
    optuna = require_optuna()
    try:
        import sklearn  # noqa: F401  (fANOVA's forests)
    except ModuleNotFoundError:
        return "need scikit-learn: pip install 'rnnlab[sweep]'"
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as error:
        return f"not available: {error}"


def build_report(directory: Path) -> str:
    """The report's text (Markdown); writes it and the plots to ``directory/report``."""
    optuna = require_optuna()
    from rnnlab import tasks

    spec, study = load_sweep(directory)
    task_cls = tasks.get(spec.task)
    metric, mode = task_cls.metric, task_cls.metric_mode
    states = optuna.trial.TrialState
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in states}
    out = directory / "report"
    out.mkdir(exist_ok=True)
    lines = [
        f"# sweep {spec.name}: task {spec.task}, objective best valid {metric} ({mode})",
        "",
        "trials: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n),
        "",
    ]
    if not complete:
        lines.append("no completed trials yet")
        return _write(out, lines)
    ranked = sorted(complete, key=lambda t: t.value, reverse=mode == "max")[:BEST_SHOWN]
    test_key = f"test_{metric}"
    lines += [f"## best trials (valid {metric}; test with the best validation's weights)", ""]
    lines += ["| trial | valid | test | steps | settings |", "|---|---|---|---|---|"]
    for t in ranked:
        test = t.user_attrs.get(test_key)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        test_text = f"{test:.4f}" if test is not None else ""
        lines.append(
            f"| {t.number} | {t.value:.4f} | {test_text} | {t.user_attrs.get('steps', '')} "
            f"| {shown} |"
        )
    for name, distribution in spec.space.items():
        if "categorical" not in distribution:
            continue
        values = distribution["categorical"]
        reference = spec.reference if spec.reference in values else values[0]
        groups = {
            v: [score(t, metric) for t in complete if t.params.get(name) == v] for v in values
        }
        p_values = compare(groups, reference)
        lines += [
            "",
            f"## {name}: test {metric} per value (Welch's t-test against {reference}, "
            f"Bonferroni x{max(len(values) - 1, 1)}; significant below {SIGNIFICANCE})",
            "",
            *variant_table(groups, reference, p_values, mode),
        ]
        _box_plot(out / f"box_{name.replace('.', '_')}.png", name, groups, metric)
    found = importances(study)
    lines += ["", "## importances (fANOVA)", ""]
    if isinstance(found, str):
        lines.append(found)
    else:
        lines += ["| setting | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in found.items()]
        _bar_plot(out / "importances.png", found)
    _history_plot(out / "history.png", complete, metric, mode)
    return _write(out, lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _write(out: Path, lines: list[str]) -> str:
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _box_plot(path: Path, name: str, groups: dict[Any, list[float]], metric: str) -> None:
    plt = _figure()
    shown = {str(k): v for k, v in groups.items() if v}
    fig, ax = plt.subplots(figsize=(1.2 * len(shown) + 2, 4))
    ax.boxplot(list(shown.values()), tick_labels=list(shown))
    ax.set(xlabel=name, ylabel=f"test {metric}", title=f"test {metric} per {name}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bar_plot(path: Path, found: dict[str, float]) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(found) + 1.5))
    names = list(found)[::-1]
    ax.barh(names, [found[n] for n in names])
    ax.set(xlabel="importance (fANOVA)", title="hyperparameter importances")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _history_plot(path: Path, complete, metric: str, mode: str) -> None:
    plt = _figure()
    numbers = [t.number for t in complete]
    values = np.asarray([t.value for t in complete])
    best = np.minimum.accumulate(values) if mode == "min" else np.maximum.accumulate(values)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(numbers, values, "o", alpha=0.6, label="trial")
    ax.plot(numbers, best, "-", label="best so far")
    ax.set(xlabel="trial", ylabel=f"valid {metric}", title="optimisation history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
