"""Secrets stay secret in every form (issue 9 §3): every text and serialization path of a
credential-holding object redacts or refuses; nothing a CLI command writes contains them."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console
from rich.pretty import pretty_repr

from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.live import Credentials, load_credentials
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.signer import OrderSigner
from polylab.secret import REDACTED, Secret

KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SECRET = "c2VjcmV0LXBsYW50ZWQtZm9yLXRoZS10ZXN0LTEyMzQ="
PASSPHRASE = "passphrase-planted-9f8e7d6c5b4a"
PLANTED = (KEY[2:], SECRET, PASSPHRASE)


def _rich(obj: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(obj)
    return buf.getvalue() + pretty_repr(obj)


def _logged(obj: object) -> str:
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    log = logging.getLogger("test_secrets")
    log.addHandler(h)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("obj %s %r", obj, obj)
        log.debug("in a dict: %s", {"obj": obj})
    finally:
        log.removeHandler(h)
    return buf.getvalue()


PATHS: dict[str, Callable[[Any], object]] = {
    "repr": repr,
    "str": str,
    "format": lambda o: f"{o} {o!r} {o!s}",
    "rich": _rich,
    "logging": _logged,
    "msgspec.json.encode": msgspec.json.encode,
    "msgspec.json.encode(enc_hook=str)": lambda o: msgspec.json.encode(o, enc_hook=str),
    "msgspec.msgpack.encode": msgspec.msgpack.encode,
    "msgspec.to_builtins": msgspec.to_builtins,
    "msgspec.to_builtins(enc_hook=str)": lambda o: msgspec.to_builtins(o, enc_hook=str),
    "msgspec.yaml-like builtins in a list": lambda o: msgspec.json.encode([o], enc_hook=repr),
    "json.dumps": json.dumps,
    "json.dumps(default=str)": lambda o: json.dumps(o, default=str),
    "json.dumps(default=vars)": lambda o: json.dumps(o, default=vars),
    "dataclasses.asdict": dataclasses.asdict,
    "msgspec.structs.asdict": lambda o: repr(msgspec.structs.asdict(o)),
    "pickle": pickle.dumps,
    "pickle protocol 0": lambda o: pickle.dumps(o, protocol=0),
    "copy.deepcopy then repr": lambda o: repr(copy.deepcopy(o)),
    "vars": lambda o: repr(vars(o)),
    "__dict__": lambda o: repr(o.__dict__),
}

REFUSALS = (TypeError, AttributeError, pickle.PicklingError, ValueError)


def _leaks(obj: object) -> dict[str, str]:
    """Path → what it produced, for every path whose output holds a planted value."""
    out: dict[str, str] = {}
    for name, path in PATHS.items():
        try:
            produced = path(obj)
        except REFUSALS:
            continue
        text = produced.decode("latin-1") if isinstance(produced, bytes) else str(produced)
        if any(p in text for p in PLANTED):
            out[name] = text[:200]
    return out


def _api_creds() -> ApiCreds:
    """Built from plain strings, as callers do (the constructor wraps them)."""
    return ApiCreds(api_key="key-1", secret=SECRET, passphrase=PASSPHRASE)  # type: ignore[arg-type]


HOLDERS: dict[str, Callable[[], object]] = {
    "Secret": lambda: Secret(SECRET),
    "ApiCreds": lambda: ApiCreds(
        api_key="key-1", secret=Secret(SECRET), passphrase=Secret(PASSPHRASE)
    ),
    "ApiCreds built from str": _api_creds,
    "ApiCreds.decode": lambda: ApiCreds.decode(
        json.dumps({"apiKey": "key-1", "secret": SECRET, "passphrase": PASSPHRASE})
    ),
    "Credentials": lambda: Credentials(KEY, _api_creds()),
    "load_credentials": lambda: load_credentials(
        {
            "POLY_PRIVATE_KEY": KEY,
            "POLY_API_KEY": "key-1",
            "POLY_API_SECRET": SECRET,
            "POLY_API_PASSPHRASE": PASSPHRASE,
        },
        env_file=None,
    ),
    "SigningKey": lambda: SigningKey(KEY),
    "OrderSigner": lambda: OrderSigner(KEY, 137),
    "a dict holding ApiCreds": lambda: {"creds": _api_creds()},
    "a Struct holding ApiCreds": lambda: _Holder(creds=_api_creds()),
}


class _Holder(msgspec.Struct):
    creds: ApiCreds


@pytest.mark.parametrize("make", HOLDERS.values(), ids=HOLDERS.keys())
def test_no_path_shows_a_secret(make: Callable[[], object]) -> None:
    assert _leaks(make()) == {}


def test_the_rest_client_holding_key_and_creds_shows_neither() -> None:
    rest = AsyncClobRest("http://127.0.0.1:9", key=SigningKey(KEY), creds=_api_creds())
    assert _leaks(rest) == {}


@pytest.mark.parametrize(
    "encode",
    [
        msgspec.json.encode,
        msgspec.msgpack.encode,
        msgspec.to_builtins,
        json.dumps,
        dataclasses.asdict,
        pickle.dumps,
    ],
    ids=["json", "msgpack", "to_builtins", "stdlib json", "asdict", "pickle"],
)
def test_serializers_refuse_api_creds(encode: Callable[[Any], object]) -> None:
    """Refused, not silently emptied: an attempt to store credentials fails loudly."""
    with pytest.raises(REFUSALS):
        encode(_api_creds())


def test_secret_reveals_only_on_request_and_compares_safely() -> None:
    s = Secret(SECRET)
    assert s.reveal() == SECRET and str(s) == REDACTED and f"{s:>30}" == REDACTED
    assert s == Secret(SECRET) and s != Secret(PASSPHRASE) and s != SECRET
    assert Secret(s).reveal() == SECRET and copy.copy(s) is s
    with pytest.raises(AttributeError):
        s._value = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]
    creds = _api_creds()
    assert creds == ApiCreds.decode(
        json.dumps({"apiKey": "key-1", "secret": SECRET, "passphrase": PASSPHRASE})
    )
    assert msgspec.json.encode(creds, enc_hook=str).count(REDACTED.encode()) == 2


def grep_tree(root: Path, planted: tuple[str, ...]) -> list[str]:
    """Every file under ``root`` (bytes, any format) that contains a planted value."""
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p}: {v[:6]}…" for v in planted if v.encode() in data]
    return hits


ENV_PLANTED = {
    "POLY_PRIVATE_KEY": KEY,
    "POLY_API_KEY": "11111111-2222-4333-8444-555555555555",
    "POLY_API_SECRET": SECRET,
    "POLY_API_PASSPHRASE": PASSPHRASE,
}


SERVE = ("sim", "serve", "--port")


def _cli(cwd: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``polylab --debug --log-file LOG ARGS`` with the planted credentials; its output."""
    import os
    import subprocess
    import sys

    full_env = {**os.environ, **ENV_PLANTED, **(env or {})}
    p = subprocess.run(
        [sys.executable, "-m", "polylab.cli", "--debug", "--log-file", str(log), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=300,
    )
    return f"$ {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"


@pytest.mark.slow
def test_every_cli_command_keeps_planted_credentials_out_of_everything(tmp_path: Path) -> None:
    """Every command, debug logging on, credentials planted in the environment (and a .env):
    stdout, stderr, the log file and every file written (run folders, recordings) are clean."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in ENV_PLANTED.items()))
    log = tmp_path / "polylab.log"
    rec = tmp_path / "rec.jsonl"
    outputs = [
        _cli(tmp_path, log, "synth", str(rec), "--duration-s", "2"),
        _cli(tmp_path, log, "replay", str(rec), "--verify"),
        _cli(tmp_path, log, "replay", str(rec), "--json"),
        _cli(tmp_path, log, "backtest", str(rec), "--json", "--out", str(tmp_path / "runs/bt")),
        _cli(
            tmp_path, log, "paper", "--seconds", "2", "--json", "--out", str(tmp_path / "runs/pa")
        ),
        _cli(tmp_path, log, "compare", str(tmp_path / "runs/pa"), str(tmp_path / "runs/bt")),
        _cli(tmp_path, log, "live", "--venue", "sim", "--seconds", "2"),
        _cli(
            tmp_path,
            log,
            *("live", "--venue", "sim", "--live", "--seconds", "2"),
            env={"DRY_RUN": "false"},
        ),
        _cli(tmp_path, log, "live", "--url", "http://127.0.0.1:1", "--seconds", "1"),
        _cli(tmp_path, log, "demo", "--seconds", "2"),
        _cli(tmp_path, log, "sim", "record", str(tmp_path / "sim.jsonl"), "--seconds", "1"),
        _cli(
            tmp_path, log, "record", str(tmp_path / "r.jsonl"), "--venue", "sim", "--seconds", "1"
        ),
        _cli(tmp_path, log, "sports", "parse", str(rec)),
        _cli(tmp_path, log, "run", "--seconds", "2", "--json", env={"POLYLAB_HTTP_PORT": "0"}),
        _cli(
            tmp_path,
            log,
            "run",
            "--live",
            "--seconds",
            "2",
            "--json",
            env={"POLYLAB_HTTP_PORT": "0"},
        ),
        _cli(tmp_path, log, "ledger", "export", str(tmp_path / "ledger-out")),
        _cli(
            tmp_path,
            log,
            "sweep",
            str(rec),
            "--strategy",
            "sum_to_100",
            "--grid",
            "min_edge=0.001,0.002",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "sweep.parquet"),
        ),
    ]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve_log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polylab.cli",
            "--debug",
            "--log-file",
            str(serve_log),
            "sim",
            "serve",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env={**os.environ, **ENV_PLANTED},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as c:
                if c.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}"
        outputs += [
            _cli(tmp_path, log, "sports", "poll", url),
            _cli(tmp_path, log, "sim", "record", str(tmp_path / "r2.jsonl"), "--url", url)
            + _cli(tmp_path, log, "paper", "--url", url, "--seconds", "1"),
            _cli(tmp_path, log, "live", "--url", url, "--live", "--seconds", "1"),
        ]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
        outputs.append(out + err)
    text = "\n".join(outputs)
    assert "-> 0" in text and "orders signed" in text  # the commands really ran
    assert log.stat().st_size > 0 and "DEBUG" in log.read_text()  # debug logging was on
    leaked = [v[:6] for v in PLANTED if v in text]
    assert leaked == [], text[-3000:]
    written = [h for h in grep_tree(tmp_path, PLANTED) if not h.startswith(f"{tmp_path}/.env:")]
    assert written == []
    assert len(list(tmp_path.glob("runs/*/summary.json"))) >= 5  # run folders were written
