"""Every operator error of every command: exactly one stderr line naming the problem and the
value, exit code 2, no traceback; ``--debug`` shows the traceback (issue 9 §2)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polylab import cli
from polylab.book.synthetic import SyntheticConfig, write_synthetic

cli._register_subapps()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other socket is listening on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def free_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Env:
    """Files the cases point at, made in the test's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rec = root / "rec.jsonl"
        write_synthetic(self.rec, SyntheticConfig(seed=1, duration_s=1.0))
        self.file = root / "plain-file"
        self.file.write_text("not a folder\n")
        self.garbage = root / "garbage.json"
        self.garbage.write_bytes(b"\x00\x01 definitely not json")
        self.missing = root / "missing-thing.json"
        self.bad_run = root / "bad-run"
        self.bad_run.mkdir()
        (self.bad_run / "summary.json").write_bytes(b"\xff{ not json")

    def config(self, name: str, text: str) -> str:
        p = self.root / name
        p.write_text(text)
        return str(p)


# (id, args builder, expected substrings of the one line, extra env)
Case = tuple[str, Callable[[Env], list[str]], Callable[[Env], list[str]], dict[str, str]]

URL = "http://127.0.0.1:{port}"
CASES: list[Case] = [
    ("replay-missing", lambda e: ["replay", str(e.missing)], lambda e: [str(e.missing)], {}),
    ("replay-top", lambda e: ["replay", str(e.rec), "--top", "-5"], lambda e: ["-5"], {}),
    ("replay-top-nan", lambda e: ["replay", str(e.rec), "--top", "x7"], lambda e: ["x7"], {}),
    (
        "synth-unwritable",
        lambda e: ["synth", str(e.file / "out.jsonl"), "--duration-s", "1"],
        lambda e: [str(e.file)],
        {},
    ),
    ("synth-negative", lambda e: ["synth", "o.jsonl", "--duration-s", "-3"], lambda e: ["-3"], {}),
    ("synth-rate", lambda e: ["synth", "o.jsonl", "--rate-hz", "-2"], lambda e: ["-2"], {}),
    ("backtest-missing", lambda e: ["backtest", str(e.missing)], lambda e: [str(e.missing)], {}),
    (
        "backtest-bad-meta",
        lambda e: ["backtest", str(e.rec), "--meta", str(e.garbage)],
        lambda e: [str(e.garbage)],
        {},
    ),
    (
        "backtest-missing-meta",
        lambda e: ["backtest", str(e.rec), "--meta", str(e.missing)],
        lambda e: [str(e.missing)],
        {},
    ),
    (
        "backtest-unknown-plugin",
        lambda e: ["backtest", str(e.rec), "--config", e.config("c.toml", _strat("nope.mod:X"))],
        lambda e: ["nope.mod:X"],
        {},
    ),
    (
        "backtest-os-system",
        lambda e: ["backtest", str(e.rec), "--config", e.config("c.toml", _strat("os:system"))],
        lambda e: ["os:system"],
        {},
    ),
    (
        "backtest-missing-config",
        lambda e: ["backtest", str(e.rec), "--config", str(e.missing)],
        lambda e: [str(e.missing)],
        {},
    ),
    (
        "backtest-negative-config",
        lambda e: [
            "backtest",
            str(e.rec),
            "--config",
            e.config("n.toml", "[risk]\nmax_open_orders = -4\n"),
        ],
        lambda e: ["max_open_orders", "-4"],
        {},
    ),
    (
        "backtest-unwritable-out",
        lambda e: ["backtest", str(e.rec), "--out", str(e.file / "run")],
        lambda e: [str(e.file / "run")],
        {},
    ),
    ("paper-malformed-url", lambda e: ["paper", "--url", "notaurl"], lambda e: ["notaurl"], {}),
    (
        "paper-bad-port-url",
        lambda e: ["paper", "--url", "http://h:99999"],
        lambda e: ["h:99999"],
        {},
    ),
    (
        "paper-unreachable",
        lambda e: ["paper", "--url", URL.format(port=e.port), "--seconds", "1"],
        lambda e: [URL.format(port=e.port)],
        {},
    ),
    ("paper-negative", lambda e: ["paper", "--seconds", "-1"], lambda e: ["-1"], {}),
    (
        "paper-unwritable-out",
        lambda e: ["paper", "--out", str(e.file / "run"), "--seconds", "1"],
        lambda e: [str(e.file / "run")],
        {},
    ),
    (
        "live-bad-key",
        lambda e: ["live", "--seconds", "1"],
        lambda e: ["POLY_PRIVATE_KEY"],
        {"POLY_PRIVATE_KEY": "0xnot-a-key-zz"},
    ),
    (
        "live-bad-api-secret",
        lambda e: ["live", "--seconds", "1"],
        lambda e: ["POLY_API_SECRET"],
        {
            "POLY_PRIVATE_KEY": "0x" + "11" * 32,
            "POLY_API_KEY": "api-key-zz-1",
            "POLY_API_SECRET": "not base64 !!",
            "POLY_API_PASSPHRASE": "pass-zz-2",
        },
    ),
    ("live-malformed-url", lambda e: ["live", "--url", "ftp://x"], lambda e: ["ftp://x"], {}),
    ("live-negative", lambda e: ["live", "--seconds", "-0.5"], lambda e: ["-0.5"], {}),
    (
        "compare-missing-run",
        lambda e: ["compare", str(e.missing), str(e.root)],
        lambda e: [str(e.missing)],
        {},
    ),
    (
        "compare-bad-summary",
        lambda e: ["compare", str(e.bad_run), str(e.bad_run)],
        lambda e: [str(e.bad_run)],
        {},
    ),
    ("demo-negative", lambda e: ["demo", "--seconds", "-2"], lambda e: ["-2"], {}),
    ("sim-serve-port", lambda e: ["sim", "serve", "--port", "99999"], lambda e: ["99999"], {}),
    ("sim-serve-negative-port", lambda e: ["sim", "serve", "--port", "-1"], lambda e: ["-1"], {}),
    (
        "sim-serve-busy",
        lambda e: ["sim", "serve", "--port", str(e.busy)],
        lambda e: [str(e.busy)],
        {},
    ),
    (
        "sim-serve-config",
        lambda e: ["sim", "serve", "--config", str(e.missing)],
        lambda e: [str(e.missing)],
        {},
    ),
    (
        "sim-record-negative",
        lambda e: ["sim", "record", "r.jsonl", "--seconds", "-1"],
        lambda e: ["-1"],
        {},
    ),
    (
        "sim-record-unwritable",
        lambda e: ["sim", "record", str(e.file / "r.jsonl"), "--seconds", "1"],
        lambda e: [str(e.file / "r.jsonl")],
        {},
    ),
    (
        "sim-record-url",
        lambda e: ["sim", "record", "r.jsonl", "--url", "127.0.0.1"],
        lambda e: ["127.0.0.1"],
        {},
    ),
    (
        "sports-parse-missing",
        lambda e: ["sports", "parse", str(e.missing)],
        lambda e: [str(e.missing)],
        {},
    ),
    (
        "sports-parse-garbage",
        lambda e: ["sports", "parse", str(e.garbage)],
        lambda e: [str(e.garbage)],
        {},
    ),
    (
        "sports-poll-unreachable",
        lambda e: ["sports", "poll", URL.format(port=e.port), "--timeout-s", "2"],
        lambda e: [URL.format(port=e.port)],
        {},
    ),
    (
        "sports-poll-timeout",
        lambda e: ["sports", "poll", "http://x", "--timeout-s", "-1"],
        lambda e: ["-1"],
        {},
    ),
    ("unknown-command", lambda e: ["frobnicate"], lambda e: ["frobnicate"], {}),
    ("run-malformed-url", lambda e: ["run", "--url", "notaurl"], lambda e: ["notaurl"], {}),
    ("run-negative", lambda e: ["run", "--seconds", "-1"], lambda e: ["-1"], {}),
    (
        "run-ledger-unreachable",
        lambda e: [
            "run",
            "--seconds",
            "1",
            "--database-url",
            f"postgresql://u:pw@127.0.0.1:{e.port}/x",
        ],
        lambda e: [f"127.0.0.1:{e.port}"],
        {},
    ),
]


def _strat(ref: str) -> str:
    return f'strategies = ["{ref}"]\n'


@pytest.mark.parametrize(
    ("args", "needles", "env"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_operator_error_is_one_line_and_exit_2(
    args: Callable[[Env], list[str]],
    needles: Callable[[Env], list[str]],
    env: dict[str, str],
    tmp_path: Path,
    busy_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for k in ("POLY_PRIVATE_KEY", "POLY_API_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE"):
        monkeypatch.delenv(k, raising=False)
    e = Env(tmp_path)
    e.busy = busy_port  # type: ignore[attr-defined]
    e.port = free_port()  # type: ignore[attr-defined]
    res = CliRunner().invoke(cli.app, args(e), env=env)
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2, (res.exit_code, res.stderr, res.exception)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("polylab: error: ")
    for needle in needles(e):
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in res.stdout + res.stderr
    for v in env.values():
        assert v not in res.stdout + res.stderr  # a secret is named, never shown


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polylab.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_debug_flag_shows_the_traceback_real_process(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    plain = _run("sports", "parse", str(missing), cwd=tmp_path)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()]
    assert str(missing) in plain.stderr and "Traceback" not in plain.stderr
    debug = _run("--debug", "sports", "parse", str(missing), cwd=tmp_path)
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


def test_log_file_gets_the_failure_and_a_bad_log_file_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "polylab.log"
    missing = tmp_path / "nope.jsonl"
    out = _run("--log-file", str(log), "replay", str(missing), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    text = log.read_text()
    assert "command failed" in text and str(missing) in text and "Traceback" in text
    bad_log = tmp_path / "no-such-dir" / "x.log"
    bad = _run("--log-file", str(bad_log), "replay", str(missing), cwd=tmp_path)
    assert bad.returncode == 2 and str(bad_log) in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
