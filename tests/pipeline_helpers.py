"""Helpers for tests/pipeline: a small project folder to run pipelines in, a local webhook
receiver standing in for Slack (a real HTTP server on loopback), and the real ``polylab``
command as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
POLYLAB = Path(sys.executable).parent / "polylab"
RUN_TIMEOUT_S = 600


class Project:
    """A folder to run pipelines in: ``data/rec-{1,2,3}.jsonl.zst`` (rec-3 held out) and
    ``sweep-small.yaml`` (a 2 × 2 grid, one worker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.recordings = [root / "data" / f"rec-{i}.jsonl.zst" for i in (1, 2, 3)]
        self.params = root / "sweep-small.yaml"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a ``polylab`` subprocess: the ledger in this folder, no webhook
        unless given."""
        env = {k: v for k, v in os.environ.items() if k not in ("SLACK_WEBHOOK_URL",)}
        env["DATABASE_URL"] = f"sqlite:///{self.root / 'ledger.db'}"
        env.update(extra)
        return env

    def polylab(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``polylab ARGS`` here (the repository's pipelines folder) and wait."""
        return subprocess.run(
            [str(POLYLAB), *args],
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )


class Webhook:
    """What a local Slack-like webhook received: each POST's JSON body."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.url = ""
        self.lock = threading.Lock()

    @property
    def texts(self) -> list[str]:
        with self.lock:
            return [str(p.get("text", "")) for p in self.payloads]


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    """A real HTTP server on an ephemeral loopback port, recording what it is sent."""
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                hook.payloads.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/hook"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def nap_pipeline(folder: Path, seconds: float = 2.5) -> None:
    """A small real pipeline in ``folder`` (``90-nap.ipynb``): it sleeps ``seconds`` (its
    params file) and writes its outputs; scheduled every second."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Nap\nSleeps `seconds`, then writes outputs.json."),
        nbformat.v4.new_code_cell('seconds = 1.0\nout_dir = ""\ndatabase_url = ""'),
        nbformat.v4.new_code_cell(
            "import time\n\n"
            "from polylab.pipeline.outputs import PipelineOutputs, write_outputs\n\n"
            "time.sleep(seconds)\n"
            'write_outputs(out_dir, PipelineOutputs(metrics={"slept_s": seconds}))'
        ),
    ]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    (folder / "params").mkdir(parents=True)
    nbformat.write(nb, folder / "90-nap.ipynb")
    (folder / "params" / "nap.yaml").write_text(f"seconds: {seconds}\n")
    (folder / "schedule.yaml").write_text("pipelines:\n  nap:\n    cron: '* * * * * *'\n")


def tries_pipeline(folder: Path) -> None:
    """A small real pipeline in ``folder`` (``91-tries.ipynb``) that counts its executions in
    the file ``marker`` (one line each, so the test sees exactly how often its cell ran). On
    its first execution it sleeps ``stall_s`` (a stalled kernel, as far as the runner can
    tell); with ``fail`` it raises instead, every time. Its cell uses the standard library only,
    so a retry's cell ends well inside a tiny limit."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tries\nCounts its executions; stalls on the first."),
        nbformat.v4.new_code_cell(
            'marker = ""\nstall_s = 0.0\nfail = False\nout_dir = ""\ndatabase_url = ""'
        ),
        nbformat.v4.new_code_cell(
            "import json\nimport time\nfrom pathlib import Path\n\n"
            'with open(marker, "a") as f:\n    f.write("ran\\n")\n'
            "tries = len(Path(marker).read_text().splitlines())\n"
            "if fail:\n"
            '    raise RuntimeError(f"boom on try {tries}")\n'
            "if tries == 1:\n"
            "    time.sleep(stall_s)\n"
            'Path(out_dir, "outputs.json").write_text(json.dumps({"metrics": {"tries": tries}}))'
        ),
    ]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "91-tries.ipynb")
