"""Run one pipeline notebook with papermill: a run folder, ``provenance.json``, a ledger row,
an alert when it fails.

``run_pipeline("sweep")`` finds ``pipelines/NN-sweep.ipynb`` (the ``pipelines/`` folder of the
current directory, or the one given), reads its parameters from ``pipelines/params/sweep.yaml``
(or the file given) with ``-p key=value`` overrides on top (values read as YAML scalars or
lists: ``-p folds=3``, ``-p held_out=[a.jsonl.zst]``), adds ``out_dir`` (the run folder) and
``database_url``, and executes it on the project's kernel (``python3`` of this environment,
registered by ``make setup``) with the current directory as the notebook's, so relative paths
in parameters mean what they mean in the shell.

The executed notebook lands in ``runs/pipelines/<UTC %Y%m%dT%H%M%SZ>-<name>/<name>.ipynb``
next to what the notebook wrote (``outputs.json`` and its artifacts), ``provenance.json``
(``pipeline.provenance``) and ``kernel.log`` (the kernel process's own output,
``pipeline.kernel``). The run is a ``pipeline_runs`` row in the ledger, ``running`` while
it runs and then ``ok`` or ``failed``. A failure (a cell raises, a parameter the notebook does
not take, a dead kernel, no ``outputs.json``) is recorded in both, alerted through the ops
alerting (``SLACK_WEBHOOK_URL``), and ``PipelineResult.error`` is one line naming the failing
cell and exception; the CLI prints it and exits 2.

Each cell has a time limit (``cell_timeout_s``, 900 s by default; 0 or None: none): a cell
over it is taken for a stalled kernel and the notebook runs once more on a fresh kernel
(``pipeline.execute``; a cell that raises is never retried). ``provenance.json`` lists the
attempts and whether the run was retried.

No two runs of one pipeline overlap: each holds an exclusive lock file
(``<root>/.locks/<name>.lock``, ``flock``) for its whole run, across processes; a second one
fails at once with ``PipelineBusy``.

A database URL with a password is never written into a notebook: it must then come from
``DATABASE_URL``, which the kernel inherits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from polylab.errors import InputError, PolylabError
from polylab.ops.alerts import AlertConfig, AlertSender
from polylab.pipeline.execute import DEFAULT_CELL_TIMEOUT_S, cell_limit, execute_with_retry
from polylab.pipeline.kernel import KERNEL_LOG, logging_kernel_manager
from polylab.pipeline.outputs import PipelineOutputs, git_sha, read_outputs
from polylab.pipeline.provenance import (
    Attempt,
    Provenance,
    RunFailure,
    Timings,
    cell_timings,
    first_statement,
    versions,
    write_provenance,
)
from polylab.pipeline.yaml_text import load_yaml
from polylab.store.ledger import Ledger
from polylab.store.ledger_configs import PipelineRunRow
from polylab.store.ledger_db import redact_url, resolve_url

__all__ = [
    "DEFAULT_CELL_TIMEOUT_S",
    "DEFAULT_ROOT",
    "KERNEL",
    "PipelineBusy",
    "PipelineError",
    "PipelineFailed",
    "PipelineResult",
    "available_pipelines",
    "declared_parameters",
    "find_pipelines",
    "load_params",
    "parse_overrides",
    "pipeline_notebook",
    "read_yaml_file",
    "run_pipeline",
    "send_alert",
]

DEFAULT_ROOT = Path("runs") / "pipelines"
KERNEL = "python3"
"""The project's kernel: ``make setup`` registers this environment's Python under this name."""

RUNNER_PARAMS = ("out_dir", "database_url")
"""Parameters the runner sets itself (a params file or ``-p`` may not)."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ALERT_TIMEOUT_S = 5.0
_MAX_EVALUE = 160


class PipelineError(InputError):
    """A pipeline cannot be started as asked (unknown name, missing folder, bad params file or
    ``-p``); the message names the value. Nothing is recorded: no run happened."""


class PipelineBusy(PipelineError):
    """Another run of the same pipeline holds its lock."""


class PipelineFailed(PolylabError):
    """A pipeline run ran and failed; the message is its one line (cell, exception, folder).
    Raised by the CLI so the central handler prints it and exits 2."""


class PipelineResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one run: ``status`` ok or failed, its ``folder`` (executed notebook,
    ``provenance.json``, outputs), the notebook's ``outputs`` and, on failure, ``error`` (one
    line)."""

    run_id: str
    name: str
    status: Literal["ok", "failed"]
    folder: Path
    outputs: PipelineOutputs
    provenance: Provenance
    error: str = ""

    @property
    def ok(self) -> bool:
        """The run finished without error."""
        return self.status == "ok"


# -- finding pipelines and their parameters --------------------------------------------------


def find_pipelines(pipelines: str | Path | None = None) -> Path:
    """The pipelines folder: ``pipelines`` when given, else ``./pipelines``."""
    d = Path(pipelines) if pipelines is not None else Path.cwd() / "pipelines"
    if not d.is_dir():
        how = "" if pipelines is not None else " (run from the project folder or pass --pipelines)"
        raise PipelineError(f"no pipelines folder at {str(d)!r}{how}")
    return d


def available_pipelines(pipelines_dir: Path) -> dict[str, Path]:
    """Pipeline name → notebook, for every ``NN-name.ipynb`` in the folder, in file order."""
    out: dict[str, Path] = {}
    for p in sorted(pipelines_dir.glob("*.ipynb")):
        num, sep, name = p.stem.partition("-")
        if sep and num.isdigit() and _NAME.match(name):
            out.setdefault(name, p)
    return out


def pipeline_notebook(pipelines_dir: Path, name: str) -> Path:
    """The notebook of pipeline ``name`` (``NN-name.ipynb``)."""
    found = available_pipelines(pipelines_dir)
    if name not in found:
        raise PipelineError(
            f"no pipeline {name!r} in {str(pipelines_dir)!r} (pipelines: {sorted(found)})"
        )
    return found[name]


def declared_parameters(notebook: Path) -> list[str]:
    """The names assigned in the notebook's cell tagged ``parameters`` (papermill's), in
    order; ``PipelineError`` when there is no such cell or it is not Python."""
    import ast

    try:
        nb = msgspec.json.decode(notebook.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise PipelineError(f"cannot read notebook {str(notebook)!r}: {exc}") from None
    for cell in nb.get("cells", []):
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            raise PipelineError(f"{notebook.name}: parameters cell is not Python: {exc}") from None
        names: list[str] = []
        for node in tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
        return names
    raise PipelineError(f"{notebook.name}: no cell tagged 'parameters'")


def read_yaml_file(path: str | Path, what: str) -> Any:
    """A YAML file's content (numbers as YAML 1.2 reads them, ``pipeline.yaml_text``);
    ``PipelineError`` naming ``what`` (e.g. "params file") and the path when it is missing,
    unreadable or not YAML."""
    import yaml

    p = Path(path)
    try:
        return load_yaml(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"no {what} at {str(p)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"cannot read {what} {str(p)!r}: {exc}") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise PipelineError(f"{what} {str(p)!r} is not valid YAML: {first}") from None


def load_params(path: str | Path) -> dict[str, Any]:
    """A params YAML file: a mapping of parameter name → value (an empty file is ``{}``)."""
    p = Path(path)
    data = read_yaml_file(p, "params file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(
            f"params file {str(p)!r} must hold a mapping name: value, not {type(data).__name__}"
        )
    for k in data:
        if not isinstance(k, str) or not _KEY.match(k):
            raise PipelineError(f"params file {str(p)!r}: bad parameter name {k!r}")
    return dict(data)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings → a dict; each value is read as YAML (``3`` an int, ``0.5`` a
    float, ``[a, b]`` a list, ``{k: v}`` a mapping, ``abc`` a string, empty → None)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise PipelineError(f"-p {item!r}: expected key=value with a parameter name as key")
        try:
            out[key] = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())
            raise PipelineError(f"-p {item!r}: the value is not valid YAML: {first}") from None
    return out


# -- running ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock(root: Path, name: str) -> Iterator[None]:
    """Hold ``<root>/.locks/<name>.lock`` exclusively, or raise ``PipelineBusy``."""
    d = root / ".locks"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineBusy(f"pipeline {name!r} is already running (lock {path})") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _run_folder(root: Path, name: str, now_ns: int) -> Path:
    stamp = datetime.fromtimestamp(now_ns / 1e9, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = root / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise PipelineError(f"cannot make a run folder for {name!r} under {str(root)!r}")


def _notebook_url(ledger: Ledger) -> tuple[str, str]:
    """(the URL handed to the notebook, the URL recorded): a URL with a password is handed as
    empty (the kernel reads ``DATABASE_URL``), and must then be the one ``DATABASE_URL`` names."""
    url = ledger.engine.url
    shown = redact_url(url.render_as_string(hide_password=False))
    if url.password:
        env = os.environ.get("DATABASE_URL", "").strip()
        if not env or resolve_url(env) != url.render_as_string(hide_password=False):
            raise PipelineError(
                f"database {shown}: a URL with a password reaches a pipeline only through "
                "DATABASE_URL (it would be written into the executed notebook)"
            )
        return "", shown
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    full = url.render_as_string(hide_password=False)
    return full, full


def _alert_config() -> AlertConfig:
    return AlertConfig(
        webhook_url=os.environ.get("SLACK_WEBHOOK_URL", "").strip(), service="polylab pipeline"
    )


def send_alert(config: AlertConfig, key: str, text: str) -> int:
    """Send one critical alert through the ops alerting and wait for it (up to 5 s), on a
    thread of its own (callable with or without a running event loop); returns alerts left
    unsent (0 when delivered or when no webhook is configured)."""
    left: list[int] = [0]

    async def go() -> None:
        sender = await AlertSender(config).start()
        sender.alert(key, text, "critical", force=True)
        left[0] = await sender.close(_ALERT_TIMEOUT_S)

    t = threading.Thread(target=asyncio.run, args=(go(),), name="pipeline-alert", daemon=True)
    t.start()
    t.join(_ALERT_TIMEOUT_S + 2.0)
    return left[0]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _failure_from(exc: BaseException) -> RunFailure:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = first_statement(str(exc.source))
        where = f"cell {exc.cell_index}" + (f" ({first})" if first else "")
        return RunFailure(
            cell=int(exc.cell_index),
            ename=str(exc.ename),
            evalue=_one_line(exc.evalue),
            line=f"{where}: {exc.ename}: {_one_line(exc.evalue)}",
        )
    ename = type(exc).__name__
    evalue = _one_line(str(exc)) or ename
    if len(evalue) > _MAX_EVALUE:  # nbclient's timeout quotes the whole cell
        evalue = evalue[: _MAX_EVALUE - 1] + "…"
    return RunFailure(cell=None, ename=ename, evalue=evalue, line=f"{ename}: {evalue}")


def run_pipeline(
    name: str,
    *,
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    root: str | Path = DEFAULT_ROOT,
    ledger: Ledger | None = None,
    alerts: AlertConfig | None = None,
    pipelines: str | Path | None = None,
    database_url: str | None = None,
    cell_timeout_s: float | None = DEFAULT_CELL_TIMEOUT_S,
) -> PipelineResult:
    """Run pipeline ``name`` (see the module docstring) and return its result; a failed run
    returns ``status="failed"`` (it is recorded, not raised). Raises ``PipelineError`` when
    nothing could be started (and ``LedgerError`` when the ledger cannot be opened).

    ``ledger``: where the run is recorded (default: ``Ledger.open(database_url)``, i.e.
    ``DATABASE_URL`` or ``runs/polylab.db``); ``alerts``: where a failure is alerted (default:
    ``SLACK_WEBHOOK_URL``); ``cell_timeout_s``: seconds per cell before the one retry on a
    fresh kernel, then failure (0 or None: no limit, no retry)."""
    try:
        limit = cell_limit(cell_timeout_s, "cell_timeout_s")
    except InputError as exc:
        raise PipelineError(str(exc)) from None
    pipes = find_pipelines(pipelines)
    src = pipeline_notebook(pipes, name)
    default_params = pipes / "params" / f"{name}.yaml"
    if params_file is not None:
        params = load_params(params_file)
    elif default_params.is_file():
        params = load_params(default_params)
    else:
        params = {}
    params.update(overrides or {})
    for k in RUNNER_PARAMS:
        if params.get(k) in ("", None):  # a params file may list them empty: the runner's win
            params.pop(k, None)
        elif k in params:
            how = "--database-url" if k == "database_url" else "--root"
            raise PipelineError(
                f"parameter {k!r} is set by the pipeline runner ({how}), not by params "
                f"(got {params[k]!r})"
            )
    root_p = Path(root).resolve()
    own_ledger = ledger is None
    led = Ledger.open(database_url) if ledger is None else ledger
    try:
        nb_url, shown_url = _notebook_url(led)
        with _lock(root_p, name):
            return _run_locked(
                name, src, params, root_p, led, alerts or _alert_config(), nb_url, shown_url,
                limit,
            )  # fmt: skip
    finally:
        if own_ledger:
            led.close()


def _run_locked(
    name: str,
    src: Path,
    params: dict[str, Any],
    root: Path,
    ledger: Ledger,
    alerts: AlertConfig,
    nb_url: str,
    shown_url: str,
    cell_timeout_s: float | None,
) -> PipelineResult:
    started = time.time_ns()
    t0 = time.perf_counter()
    folder = _run_folder(root, name, started)
    run_id = uuid.uuid4().hex
    executed = folder / f"{name}.ipynb"
    nb_params = {**params, "out_dir": str(folder), "database_url": nb_url}
    shown_params = {**params, "out_dir": str(folder), "database_url": shown_url}
    sha = git_sha()
    ledger.start_pipeline_run(
        PipelineRunRow(
            id=run_id,
            name=name,
            status="running",
            started_ns=started,
            folder=str(folder),
            git_sha=sha,
            params=shown_params,
        )
    )
    failure: RunFailure | None = None
    interrupted: BaseException | None = None
    attempts: list[Attempt] = []

    def drop_outputs() -> None:  # the retry's outputs.json, not the stalled try's
        (folder / "outputs.json").unlink(missing_ok=True)

    try:
        declared = declared_parameters(src)
        missing = [k for k in RUNNER_PARAMS if k not in declared]
        unknown = sorted(k for k in params if k not in declared)
        if missing:
            raise PipelineError(
                f"{src.name}: its parameters cell must declare {missing} (the runner sets them)"
            )
        if unknown:
            takes = sorted(k for k in declared if k not in RUNNER_PARAMS)
            raise PipelineError(f"unknown parameter {unknown[0]!r} for {name} (takes: {takes})")
        execute_with_retry(
            src,
            executed,
            parameters=nb_params,
            kernel_name=KERNEL,
            cwd=Path.cwd(),
            cell_timeout_s=cell_timeout_s,
            attempts=attempts,
            before_retry=drop_outputs,
            language="python",
            kernel_manager_class=logging_kernel_manager(folder / KERNEL_LOG),
        )
        if not (folder / "outputs.json").is_file():
            raise PipelineError(
                f"{src.name} wrote no outputs.json (end it with write_outputs(out_dir, ...))"
            )
    except Exception as exc:  # any failure of the run: recorded, alerted, returned
        failure = _failure_from(exc)
    except BaseException as exc:  # Ctrl-C, SystemExit: recorded as failed, then re-raised
        interrupted = exc
        failure = RunFailure(
            cell=None, ename=type(exc).__name__, evalue="interrupted", line="interrupted"
        )
    finished = time.time_ns()
    outputs = read_outputs(folder) if (folder / "outputs.json").is_file() else PipelineOutputs()
    status: Literal["ok", "failed"] = "failed" if failure is not None else "ok"
    cells = cell_timings(executed)
    line = ""
    if failure is not None and failure.cell is None and failure.ename != "PipelineError":
        # a time limit or a dead kernel names no cell: it is the last one papermill started
        begun = [c for c in cells if c.status != "pending"]
        if begun:
            c = begun[-1]
            where = f"cell {c.index}" + (f" ({c.source})" if c.source else "")
            failure = msgspec.structs.replace(
                failure, cell=c.index, line=f"{where}: {failure.ename}: {failure.evalue}"
            )
    retried = len(attempts) > 1
    if failure is not None:
        what = f" at {failure.line}" if failure.cell is not None else f": {failure.line}"
        if retried:
            what += f" (on its retry: {len(attempts)} attempts)"
        line = f"pipeline {name} failed{what} (run folder {folder})"
        failure = msgspec.structs.replace(failure, line=line)
    prov = Provenance(
        pipeline=name,
        run_id=run_id,
        status=status,
        folder=str(folder),
        notebook=str(src),
        executed=executed.name,
        git_sha=sha,
        parameters=shown_params,
        config_ids=list(outputs.config_ids),
        data_hashes=dict(outputs.data_hashes),
        metrics=dict(outputs.metrics),
        artifacts=dict(outputs.artifacts),
        timings=Timings(
            started_ns=started,
            finished_ns=finished,
            duration_s=round(time.perf_counter() - t0, 3),
            cells=cells,
        ),
        versions=versions(),
        error=failure,
        cell_timeout_s=cell_timeout_s,
        attempts=attempts,
        retried=retried,
    )
    write_provenance(folder, prov)
    if failure is not None:  # alerted first: a ledger that is down must not swallow it
        # the folder's name, not its path: the alert sanitizer would take a long path with
        # capitals and digits for a secret and redact it
        text = f"pipeline {name} failed{what} (run {folder.name}, id {run_id})"
        send_alert(alerts, f"pipeline:{name}:{run_id}", text)
    try:
        ledger.finish_pipeline_run(
            run_id,
            status=status,
            metrics=outputs.metrics,
            config_ids=list(outputs.config_ids),
            error=line,
            finished_ns=finished,
        )
    except Exception as exc:  # the run is in its folder; the ledger row stays `running`
        send_alert(
            alerts,
            f"pipeline-ledger:{name}:{run_id}",
            f"pipeline {name} {status} but not recorded in the ledger "
            f"(run {folder.name}, id {run_id}): {type(exc).__name__}",
        )
        raise
    if interrupted is not None:
        raise interrupted
    return PipelineResult(
        run_id=run_id,
        name=name,
        status=status,
        folder=folder,
        outputs=outputs,
        provenance=prov,
        error=line,
    )
