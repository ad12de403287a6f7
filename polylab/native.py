"""The replay hot path compiled to C with mypyc, when it was built; else the same modules as Python.

Why: replaying a recording spends about half its time in the Python book and sum-monitor code
(``book/l2.py``, ``book/registry.py``, ``analysis/windows.py``, ``analysis/replay.py``). mypyc
compiles exactly those typed sources to C extensions: same source, same results, about 1.4×
the replay rate (``bench/bench_replay.py``, 2026-11-29: 258k against 182k level updates/s).
The engine's feed → book step runs the same code.

``make setup`` builds them (``python -m polylab.native_build build``) when a C compiler is
present: the extensions sit next to their sources (git-ignored) with ``native.json``, the
SHA-256 of each source as compiled. ``guard`` runs when ``polylab`` is imported and lets the
compiled group load only when every source still has the hash it was compiled from, for this
Python; otherwise (a source edited since, no build, another interpreter, ``POLYLAB_PURE=1``)
the ``.py`` sources load, never a stale extension. ``status`` says which ran and why.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["MODULES", "NativeStatus", "decide", "guard", "status"]

MODULES: tuple[str, ...] = (
    "polylab.book.l2",
    "polylab.book.registry",
    "polylab.analysis.windows",
    "polylab.analysis.replay",
)
"""The modules compiled as one mypyc group (they call each other natively, so they load all
compiled or all as Python, never mixed)."""

GROUP = "polylab.native"
"""mypyc group name: its shared library is ``polylab/native__mypyc.*.so``."""

PURE_ENV = "POLYLAB_PURE"
"""Set to a non-empty value other than ``0`` to run the Python sources even when compiled."""

_PKG = Path(__file__).resolve().parent
_MANIFEST = _PKG / "native.json"


class NativeStatus:
    """Whether the compiled group is in use, and the reason when it is not."""

    __slots__ = ("compiled", "reason")

    def __init__(self, compiled: bool, reason: str) -> None:
        self.compiled = compiled
        self.reason = reason

    def __repr__(self) -> str:
        return f"NativeStatus(compiled={self.compiled}, reason={self.reason!r})"

    def line(self) -> str:
        """One line for reports and bench output."""
        if self.compiled:
            return "compiled with mypyc: " + ", ".join(m.removeprefix("polylab.") for m in MODULES)
        return f"pure Python ({self.reason})"


_status: NativeStatus | None = None


def _source(module: str, pkg: Path = _PKG) -> Path:
    return pkg.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extension(module: str, pkg: Path = _PKG) -> Path | None:
    src = _source(module, pkg)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = src.with_suffix(suffix)
        if p.exists():
            return p
    return None


def decide(pkg: Path = _PKG, env: dict[str, str] | None = None) -> NativeStatus:
    """Whether the compiled group at ``pkg`` (the ``polylab`` package folder) may load."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    assert env is not None
    pure = env.get(PURE_ENV, "")
    if pure and pure != "0":
        return NativeStatus(False, f"{PURE_ENV}={pure}")
    missing = [m for m in MODULES if _extension(m, pkg) is None]
    if missing:
        return NativeStatus(
            False, "not compiled (make setup builds it when a C compiler is present)"
        )
    manifest = pkg / _MANIFEST.name
    try:
        built = json.loads(manifest.read_text())
        sources: dict[str, str] = built["sources"]
        tag = built["cache_tag"]
    except (OSError, ValueError, KeyError, TypeError):
        return NativeStatus(False, f"{manifest.name} missing or unreadable: rebuild (make setup)")
    if tag != sys.implementation.cache_tag:
        return NativeStatus(False, f"compiled for {tag}, this is {sys.implementation.cache_tag}")
    for m in MODULES:
        src = _source(m, pkg)
        try:
            same = sources.get(m) == _digest(src)
        except OSError:
            same = False
        if not same:
            return NativeStatus(
                False, f"{src.relative_to(pkg.parent)} changed since it was compiled (make setup)"
            )
    return NativeStatus(True, "")


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Loads the group's modules from their ``.py`` files, ahead of the compiled extensions."""

    def __init__(self, pkg: Path) -> None:
        self.paths = {m: _source(m, pkg) for m in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        src = self.paths.get(fullname)
        if src is None:
            return None
        return importlib.util.spec_from_file_location(fullname, src)


def guard() -> NativeStatus:
    """Called on ``import polylab``: keep stale or unwanted extensions from loading."""
    global _status
    if _status is None:
        _status = decide()
        if not _status.compiled and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceFirst(_PKG))
    return _status


def status() -> NativeStatus:
    """What this process runs, checked against the modules actually loaded."""
    st = guard()
    if st.compiled:
        mod = importlib.import_module(MODULES[0])  # the module whose file tells
        if not str(mod.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return NativeStatus(False, f"compiled group present but {mod.__file__} loaded")
    return st
