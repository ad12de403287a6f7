"""The public surface is explicit: every polylab module lists what it exports in ``__all__``,
every listed name exists, and every public class or function it defines is listed."""

import importlib
import inspect
import pkgutil

import pytest

import polylab

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(polylab.__path__, "polylab.")
    if not m.ispkg and not m.name.endswith("__mypyc")  # the compiled group's shared library
)


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_complete(name: str) -> None:
    mod = importlib.import_module(name)
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for n in exported:
        assert hasattr(mod, n), f"{name}.__all__ lists missing {n}"
    defined = {
        n
        for n, obj in vars(mod).items()
        if not n.startswith("_")
        and not n.endswith("_cmd")  # typer commands are the CLI's
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == name
    }
    assert defined <= set(exported), f"{name} defines but does not export {defined - set(exported)}"


def test_import_polylab_stays_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, polylab.analysis.replay, polylab.cli; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
