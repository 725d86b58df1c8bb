"""Recurrent cells, one family per module, all created by name through one registry.

Every module of this package is imported here so that its ``@register`` entries exist;
adding a family is adding a file.
"""

import importlib
import pkgutil

from rnnlab.cells.base import Cell, available, create, get, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Cell", "available", "create", "get", "register"]
