"""Tasks: what ``rnnlab train --task NAME`` and ``rnnlab bench`` train and evaluate.

Every module of this package is imported here so that its ``@register`` entries exist; adding a
task is adding a file. See :mod:`rnnlab.tasks.base` for the contract.
"""

import importlib
import pkgutil

from rnnlab.tasks.base import Batch, Task, available, create, get, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Batch", "Task", "available", "create", "get", "register"]
