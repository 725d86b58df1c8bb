"""The training progress bar (tqdm, on stderr): the share of the budget used and the time left.

With a budget (``--max-steps``, ``--max-minutes``, ``--epochs``) the bar runs from 0 to 1 over
the share of it used, the largest over the budgets given, and tqdm's ETA is the time left at the
pace so far::

    37% of 5 min |██████▏          | 01:51<03:09, step 620 | loss 1.412 | 9,876 chars/s

Without one it counts steps.
"""

from __future__ import annotations

import re
import sys

from tqdm import tqdm

BUDGET_FORMAT = "{percentage:3.0f}% of {desc} |{bar}| {elapsed}<{remaining}{postfix}"
BAR_LINE = re.compile(r"^\s*(\d+% of .*\||\d+step \[)")
"""A line of the bar as it appears in captured stderr (split at ``\\r`` and ``\\n``)."""


def is_bar_line(line: str) -> bool:
    """Whether ``line`` of a captured stderr is the progress bar (a budget bar or a step
    counter), for programs and tests that read rnnlab's messages around it."""
    return bool(BAR_LINE.match(line))


def budget_label(max_steps: int | None, max_minutes: float | None, epochs: int | None) -> str:
    """``"1,000 steps or 5 min"``: the budgets given, ``""`` for none."""
    parts = []
    if max_steps:
        parts.append(f"{max_steps:,} steps")
    if max_minutes:
        parts.append(f"{max_minutes:g} min")
    if epochs:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    return " or ".join(parts)


def budget_bar(label: str, step: int, used: float, enabled: bool = True) -> tqdm:
    """A bar over the budget ``label`` with the share ``used`` done (a step counter from
    ``step`` when ``label`` is empty)."""
    common = {"disable": not enabled, "dynamic_ncols": True, "file": sys.stderr}
    if not label:
        return tqdm(initial=step, unit="step", **common)
    return tqdm(total=1.0, initial=min(used, 1.0), desc=label, bar_format=BUDGET_FORMAT, **common)


def advance(bar: tqdm, step: int, used: float, shown: str) -> None:
    """After a step: move ``bar`` to ``used`` of the budget (or one step on) and show ``shown``
    (the loss, the throughput) beside it."""
    if bar.total is None:
        bar.update(1)
        bar.set_postfix_str(shown, refresh=False)
        return
    bar.set_postfix_str(f"step {step} | {shown}", refresh=False)
    bar.update(max(min(used, 1.0) - bar.n, 0.0))
