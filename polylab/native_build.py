"""Build the compiled hot path: ``python -m polylab.native_build build|ensure|clean|status``.

Kept apart from ``polylab.native``, which every ``import polylab`` runs: building needs mypyc,
setuptools and a C compiler, loading needs none of them. See ``polylab.native`` for why and what.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from polylab.native import (
    _MANIFEST,
    _PKG,
    GROUP,
    MODULES,
    PURE_ENV,
    _digest,
    _extension,
    _source,
    decide,
    status,
)

__all__ = ["build", "clean", "main"]


def build(*, verbose: bool = False, pkg: Path = _PKG) -> Path:
    """Compile the group in place with mypyc (needs a C compiler); returns the manifest path.

    The C sources and objects go to a temporary folder; only the extensions and the manifest
    land next to the sources. The manifest is written last, so a failed build leaves the group
    unused rather than half-used."""
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    root = pkg.parent
    manifest = pkg / _MANIFEST.name
    clean(pkg)  # unlink, never overwrite: a running process keeps its mapped copy
    rel = [str(_source(m, pkg).relative_to(root)) for m in MODULES]
    digests = {m: _digest(_source(m, pkg)) for m in MODULES}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="polylab-native-") as tmp:
        os.chdir(root)
        try:
            exts = mypycify(rel, opt_level="3", group_name=GROUP, target_dir=str(Path(tmp) / "c"))
            args = ["build_ext", "--inplace", "--build-temp", str(Path(tmp) / "o")]
            with warnings.catch_warnings():  # setuptools' notes on the project's pyproject
                warnings.simplefilter("ignore")
                setup(
                    name="polylab-native",
                    ext_modules=exts,
                    script_args=[*args] if verbose else ["-q", *args],
                )
        finally:
            os.chdir(cwd)
    missing = [m for m in MODULES if _extension(m, pkg) is None]
    if missing:
        raise RuntimeError(f"mypyc build left no extension for {', '.join(missing)}")
    manifest.write_text(
        json.dumps({"cache_tag": sys.implementation.cache_tag, "sources": digests}, indent=1) + "\n"
    )
    return manifest


def clean(pkg: Path = _PKG) -> list[Path]:
    """Remove the compiled extensions and the manifest (the sources then load)."""
    gone: list[Path] = []
    for m in MODULES:
        ext = _extension(m, pkg)
        if ext is not None:
            ext.unlink()
            gone.append(ext)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        lib = pkg / f"native__mypyc{suffix}"
        if lib.exists():
            lib.unlink()
            gone.append(lib)
    if (pkg / _MANIFEST.name).exists():
        (pkg / _MANIFEST.name).unlink()
        gone.append(pkg / _MANIFEST.name)
    return gone


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m polylab.native build|clean|status`` (exit 2 with one line on a bad command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else "status"
    if cmd == "build":
        try:
            build(verbose="-v" in args)
        except Exception as exc:  # no compiler, mypyc error: the sources still run
            print(f"polylab.native: not compiled, pure Python runs ({exc})", file=sys.stderr)
            return 1
        print(f"polylab.native: {decide().line()}")
        return 0
    if cmd == "ensure":  # make setup: build only when the compiled group is missing or stale
        st = decide()
        if st.compiled or st.reason.startswith(PURE_ENV):
            return 0
        cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
        if shutil.which(cc) is None:
            print(f"note: no C compiler ({cc}): polylab runs its hot path as pure Python")
            return 0
        print(f"polylab.native: compiling the hot path with mypyc ({st.reason})")
        return main(["build"])
    if cmd == "clean":
        for p in clean():
            print(f"removed {p}")
        return 0
    if cmd == "status":
        print(status().line())
        return 0
    print(
        f"polylab.native: unknown command {cmd!r} (build, ensure, clean, status)", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
