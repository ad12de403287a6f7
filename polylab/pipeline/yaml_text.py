"""YAML for pipeline params and schedules, without YAML 1.1's base-60 numbers.

PyYAML follows YAML 1.1, where ``10:50:10`` is the integer 39010 (sexagesimal) while
``10:200:10`` stays a string: a grid range ``min_liquidity=10:50:10`` would silently become a
number. This loader reads numbers as YAML 1.2 does (``10``, ``-3``, ``0.5``, ``1e3``, ``.inf``)
and leaves anything with a colon a string. Everything else is PyYAML's safe loader.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml"]

_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:(?:\.[0-9]+|[0-9][0-9_]*\.[0-9_]*)(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+)"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """The safe loader with YAML 1.2 numbers (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Parse one YAML document (``yaml.YAMLError`` when it is not YAML)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
