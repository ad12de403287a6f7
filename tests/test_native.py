"""The compiled hot path (polylab.native): it loads only when built from the very sources, and it
computes exactly what the Python sources compute."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from fixture_data import write_capture

import polylab
from polylab import native
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.feed.recording import Record, RecordingWriter
from polylab.native_build import main as build_main

PKG = Path(polylab.__file__).resolve().parent


def fake_build(pkg: Path) -> None:
    """A package folder with the group's sources, placeholder extensions and their manifest."""
    for m in native.MODULES:
        src = pkg.joinpath(*m.split(".")[1:]).with_suffix(".py")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(f"# {m}\n")
        src.with_suffix(".cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    digests = {m: native._digest(native._source(m, pkg)) for m in native.MODULES}
    (pkg / "native.json").write_text(
        json.dumps({"cache_tag": sys.implementation.cache_tag, "sources": digests})
    )


@pytest.fixture
def fake_pkg(tmp_path: Path) -> Path:
    if ".cpython-311-x86_64-linux-gnu.so" not in native.importlib.machinery.EXTENSION_SUFFIXES:
        pytest.skip("the placeholder extension names are CPython 3.11 on x86-64 Linux")
    pkg = tmp_path / "polylab"
    fake_build(pkg)
    return pkg


def test_a_build_of_the_current_sources_is_used(fake_pkg: Path) -> None:
    st = native.decide(fake_pkg, env={})
    assert (st.compiled, st.reason) == (True, "")
    assert "compiled with mypyc" in st.line()


def test_an_edited_source_turns_the_whole_group_to_python(fake_pkg: Path) -> None:
    with open(fake_pkg / "book" / "registry.py", "a") as f:
        f.write("# edited\n")
    st = native.decide(fake_pkg, env={})
    assert not st.compiled
    assert "polylab/book/registry.py changed since it was compiled" in st.reason


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("pure", "POLYLAB_PURE=1"),
        ("no_manifest", "native.json missing or unreadable"),
        ("bad_manifest", "native.json missing or unreadable"),
        ("other_python", "compiled for cpython-27"),
        ("no_extension", "not compiled"),
    ],
)
def test_the_sources_run_when_the_build_is_not_usable(
    fake_pkg: Path, damage: str, reason: str
) -> None:
    env: dict[str, str] = {}
    manifest = fake_pkg / "native.json"
    if damage == "pure":
        env = {"POLYLAB_PURE": "1"}
    elif damage == "no_manifest":
        manifest.unlink()
    elif damage == "bad_manifest":
        manifest.write_text("{not json")
    elif damage == "other_python":
        manifest.write_text(
            manifest.read_text().replace(sys.implementation.cache_tag, "cpython-27")
        )
    else:
        next((fake_pkg / "analysis").glob("windows*.so")).unlink()
    st = native.decide(fake_pkg, env=env)
    assert not st.compiled and st.reason.startswith(reason)
    assert native.decide(fake_pkg, env={"POLYLAB_PURE": "0"}).compiled is (damage == "pure")


def test_a_bad_build_command_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_main(["bulid"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'bulid'" in err


# -- the real build ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled() -> None:
    """The group as ``make setup`` built it; required in CI (``POLYLAB_REQUIRE_NATIVE=1``)."""
    st = native.decide()
    if not st.compiled:
        msg = f"the hot path is not compiled here: {st.reason}"
        if os.environ.get("POLYLAB_REQUIRE_NATIVE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def test_this_process_runs_the_compiled_group(compiled: None) -> None:
    import polylab.analysis.replay as replay_mod
    import polylab.book.l2 as l2

    assert native.status().compiled
    for mod in (l2, replay_mod):
        assert str(mod.__file__).endswith(".so"), mod.__file__


def probe(pythonpath: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    code = (
        "import json, polylab.book.l2 as m, polylab.native as n; s = n.status();"
        "print(json.dumps({'file': m.__file__, 'compiled': s.compiled, 'reason': s.reason}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(pythonpath), **(env or {})},
        cwd=pythonpath,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_editing_a_compiled_source_runs_the_edit_not_the_stale_extension(
    compiled: None, tmp_path: Path
) -> None:
    copy = tmp_path / "polylab"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    fresh = probe(tmp_path)
    assert fresh["compiled"] is True
    assert str(fresh["file"]).startswith(str(copy)) and str(fresh["file"]).endswith(".so")
    with open(copy / "book" / "l2.py", "a") as f:
        f.write("\nEDITED = True\n")
    stale = probe(tmp_path)
    assert stale["file"] == str(copy / "book" / "l2.py")
    assert stale["compiled"] is False and "polylab/book/l2.py changed" in str(stale["reason"])
    assert probe(tmp_path, {"POLYLAB_PURE": "1"})["reason"] == "POLYLAB_PURE=1"


# -- compiled == Python ---------------------------------------------------------------------------

REPLAY_SCRIPT = """
import json, sys
import msgspec
from polylab import native
from polylab.analysis.replay import replay
out = {"native": native.status().compiled, "runs": []}
for path in sys.argv[1:]:
    for verify in (True, False):
        res, reg, windows, mon = replay(path, verify=verify, keep_series=True)
        r = msgspec.to_builtins(res)
        r.pop("seconds"); r.pop("updates_per_s")
        books = {
            a: [b.best_bid, b.best_ask, b.bid_px, b.ask_px, b.n_bids, b.n_asks,
                b.bid_levels(), b.ask_levels(), b.tick.text, b.updated_ns, b.hash]
            for a, b in sorted(reg.books.items())
        }
        out["runs"].append({
            "path": path, "verify": verify, "result": r, "books": books,
            "windows": msgspec.to_builtins(windows),
            "series": msgspec.to_builtins(mon.series) if mon is not None else None,
        })
print(json.dumps(out))
"""


def replay_in(env: dict[str, str], paths: list[Path]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", REPLAY_SCRIPT, *map(str, paths)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_compiled_and_python_replays_agree_on_everything(
    compiled: None, shared_fixtures: Path, tmp_path: Path
) -> None:
    real = write_capture(shared_fixtures, tmp_path / "real.jsonl")
    synth = tmp_path / "synthetic.jsonl.zst"
    cfg = SyntheticConfig(seed=5, duration_s=6.0, rate_hz=800.0, binary_markets=4)
    with RecordingWriter(synth) as w:
        for at, ch, payload in generate(cfg):
            w.write(ch, payload, at)
    legacy = tmp_path / "legacy.jsonl"  # frames as JSON strings: the two-pass path
    enc = msgspec.json.Encoder()
    legacy.write_text(
        "".join(enc.encode(Record(at, ch, p)).decode() + "\n" for at, ch, p in generate(cfg))
    )
    with open(real, "a") as f:  # bad input takes the guarded paths in both builds
        f.write('{"recv_ns": 1, "channel": "market", "payload": "{\\"event_type\\": 7}"}\n')
        f.write("not a record\n")
    fast = replay_in({"POLYLAB_PURE": "0"}, [real, synth, legacy])
    slow = replay_in({"POLYLAB_PURE": "1"}, [real, synth, legacy])
    assert (fast["native"], slow["native"]) == (True, False)
    runs = fast["runs"]
    assert isinstance(runs, list) and len(runs) == 6
    synth_run = runs[2]
    assert synth_run["result"]["level_updates"] > 1000 and synth_run["windows"]
    assert runs[0]["result"]["malformed"] == 2
    assert runs[4]["books"] == synth_run["books"] and runs[4]["windows"] == synth_run["windows"]
    assert fast["runs"] == slow["runs"]
    assert msgspec.json.encode(fast["runs"]) == msgspec.json.encode(slow["runs"])


def test_the_compiled_modules_define_no_struct_or_class_keywords() -> None:
    """mypyc drops a class's keywords (msgspec's ``frozen=``, ``array_like=``,
    ``forbid_unknown_fields=``...) and makes subclasses of C types second-class: the group's
    modules hold plain classes only; their Structs live in modules that always run as Python."""
    import ast

    offenders = []
    for m in native.MODULES:
        tree = ast.parse(native._source(m, PKG).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and (node.bases or node.keywords):
                offenders.append(f"{m}.{node.name}")
    assert offenders == []
