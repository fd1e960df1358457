"""Warm workers: stage commands forked from a server that has already imported torch, timm and the methods.

A cold `miad train` spends seconds importing before its command starts; under `WarmExecutor` a `miad train` or
`miad evaluate` stage forks from `miad.launcher.zygote`'s server instead, which pinned the numeric environment and
imported those libraries once, in a cold process's order. Every other command (render and dataset stages, which
load Blender; stats, report; any shell line that is not one plain `miad` command) runs cold, as `LocalExecutor`
runs it, and so does a stage whose environment or numeric pin differs from the server's. Each child starts from
the same clean server, so no state passes from one stage to the next; see the zygote's docstring for what a child
draws afresh and tests/test_warm.py for the proof (outputs byte for byte equal to cold runs, in either order).

The server lives in a session of its own (a terminal's Ctrl-C does not reach it): `close()` ends it and every
child, and so does the end of this process (the server leaves when its socket closes).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from miad.executors.base import Job, Outcome, Task, read_tail
from miad.executors.local import LocalExecutor
from miad.launcher.zygote import KILL_GRACE_SECONDS, MAX_MESSAGE, comparable

WARM_COMMANDS = ("train", "evaluate")  # what the server preloads for; render/dataset load Blender, the rest are few
SHELL_SPECIAL = set("$`\\;&|<>(){}[]*?~!#\n\"'")  # anything a shell would expand, redirect or chain: run it cold
START_TIMEOUT_SECONDS = 600.0  # the server's imports on a slow, busy machine


class WarmError(RuntimeError):
    """The warm server could not start or died."""


def miad_argv(task: Task, commands: tuple[str, ...]) -> list[str] | None:
    """The arguments after `miad` when the task is one plain `miad <command> ...` among `commands`, else None.
    A DVC stage's task is (shell, [options such as bash's --norc], "-c", line); quotes, variables, chains,
    redirections and assignments run cold."""
    argv = list(task.argv)
    if len(argv) >= 3 and argv[-2] == "-c" and all(a.startswith("-") for a in argv[1:-1]):
        line = argv[-1]
        if SHELL_SPECIAL & set(line):
            return None
        argv = shlex.split(line)
    if len(argv) < 2 or argv[0] != "miad" or argv[1] not in commands:
        return None
    return argv[1:]


def interpreter_of(script: str) -> str | None:
    """The interpreter named on a script's `#!` line, resolved (None when it has none)."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    return os.path.realpath(first[2:].decode(errors="replace").split()[0])


class WarmJob:
    """One command forked by the server: its status arrives over the socket."""

    def __init__(self, executor: WarmExecutor, task: Task, ident: int, log_path: Path) -> None:
        self.task, self.ident, self.log_path = task, ident, log_path
        self.executor = executor
        self.pid: int | None = None
        self.returncode: int | None = None
        self.cold_reason = ""  # set when the child found the pin or environment different and ran the shell line
        self.lost = ""  # set when the server died before reporting this job's end
        self._finished = threading.Event()

    @property
    def warm(self) -> bool:
        return not self.cold_reason

    @property
    def session(self) -> int:
        """The warm server's session, which holds this command: what a later run stops if this one is killed."""
        return self.executor.session

    def done(self) -> bool:
        return self._finished.is_set()

    def outcome(self) -> Outcome:
        self._finished.wait()
        text = read_tail(self.log_path)
        if self.lost:
            return Outcome(False, None, f"{text}\n({self.lost})", "LOST", str(self.log_path))
        code = self.returncode
        return Outcome(code == 0, code, text, "exited", str(self.log_path))

    def cancel(self) -> None:
        """SIGTERM the command's process group, SIGKILL after the grace period; returns once it has ended."""
        if self.done():
            return
        self.executor._send({"op": "cancel", "id": self.ident, "grace": KILL_GRACE_SECONDS})
        if not self._finished.wait(KILL_GRACE_SECONDS + 10):
            if self.pid is not None:
                _kill_group(self.pid, signal.SIGKILL)
            self._finish(lost="cancelled; the warm server did not report its end")

    def _finish(self, returncode: int | None = None, lost: str = "") -> None:
        if not self._finished.is_set():
            self.returncode, self.lost = returncode, lost
            self._finished.set()


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class WarmExecutor:
    """Runs `miad train`/`miad evaluate` tasks forked from a warm server, every other task as a cold process.

    `root`: the project whose params decide the server's numeric pin. `commands`: which `miad` commands may run
    warm. The server starts with the first warm task, in that task's environment (this process's plus the task's
    additions), so the launcher's per-launch additions (OMP_WAIT_POLICY with several jobs) are part of it.
    """

    kind = "local"

    def __init__(self, root: Path, log_dir: Path | None = None, commands: tuple[str, ...] = WARM_COMMANDS) -> None:
        self.root = Path(root).resolve()
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="miad-warm-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.commands = tuple(commands)
        self.cold = LocalExecutor(self.log_dir)
        self.ready: dict[str, Any] = {}  # the server's ready message (pid, threads, pin)
        self.server_env: dict[str, str] | None = None
        self.program: str | None = None  # the `miad` script the server stands in for
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._jobs: dict[int, WarmJob] = {}
        self._cold_jobs: list[Job] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._closed = False

    def __enter__(self) -> WarmExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, task: Task) -> Job:
        env = {**os.environ, **task.env}
        argv = miad_argv(task, self.commands)
        program = shutil.which("miad", path=env.get("PATH")) if argv is not None else None
        if argv is None or program is None or not self._same_interpreter(program):
            return self._submit_cold(task)
        if self._proc is None:
            self._start(env, program)
        elif comparable(env) != comparable(self.server_env or {}) or program != self.program:
            return self._submit_cold(task)  # the child would find it too; deciding here saves a fork
        ident = next(self._ids)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task.name)
        log_path = Path(tempfile.mkstemp(prefix=f"{safe}-", suffix=".log", dir=self.log_dir)[1])
        job = WarmJob(self, task, ident, log_path)
        with self._lock:
            self._jobs[ident] = job
        request = {"op": "run", "id": ident, "miad_argv": argv, "shell_argv": list(task.argv), "program": program}
        self._send({**request, "cwd": str(task.cwd), "env": env, "log": str(log_path)})
        return job

    def submit_many(self, tasks: list[Task]) -> list[Job]:
        return [self.submit(t) for t in tasks]

    @property
    def session(self) -> int:
        """The server's session id (it leads a session of its own); every command it forks stays in it."""
        if self._proc is None:
            raise WarmError("the warm server has not started")
        return self._proc.pid

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Block until the server has imported everything (benchmarks time this); its ready message."""
        if not self._ready.wait(timeout):
            raise WarmError(f"the warm server did not get ready within {timeout:.0f}s")
        if not self.ready:
            raise WarmError(f"the warm server died while starting (its log: {self.log_dir / 'warm-server.log'})")
        return self.ready

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Start the server now (it starts with the first warm task otherwise), e.g. while earlier stages run."""
        if self._proc is None:
            env = {**os.environ, **(extra_env or {})}
            program = shutil.which("miad", path=env.get("PATH"))
            if program is None:
                raise WarmError("no `miad` on PATH: nothing to stand in for")
            self._start(env, program)

    def close(self) -> None:
        """End the server and every command it forked (SIGTERM, SIGKILL after a grace period), and every cold
        command still running; no process of the server's session is left."""
        if self._closed:
            return
        self._closed = True
        for job in self._cold_jobs:
            job.cancel()
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            self._send({"op": "close"})
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(KILL_GRACE_SECONDS + 5)
        _kill_group(self._proc.pid, signal.SIGKILL)  # whatever is left of the server's own group
        with self._lock:
            running = [job for job in self._jobs.values() if not job.done() and job.pid is not None]
        for job in running:
            _kill_group(job.pid, signal.SIGKILL)  # type: ignore[arg-type]
        self._proc.wait()
        if self._sock is not None:
            self._sock.close()
        if self._reader is not None:
            self._reader.join(5)
        for job in running:
            job._finish(lost="the warm executor was closed")

    # --- the server's side of the socket

    def _same_interpreter(self, program: str) -> bool:
        """A cold `miad` would run under this Python (the server is started with it): else run the task cold."""
        return interpreter_of(program) == os.path.realpath(sys.executable)

    def _start(self, env: dict[str, str], program: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path0 = os.path.dirname(os.path.realpath(program))
        argv = [sys.executable, "-P", "-m", "miad.launcher.zygote", "--fd", str(theirs.fileno())]
        argv += ["--root", str(self.root), "--path0", path0]
        with (self.log_dir / "warm-server.log").open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        theirs.close()
        self._sock, self.server_env, self.program = ours, dict(env), program
        self._reader = threading.Thread(target=self._read, name="miad-warm-reader", daemon=True)
        self._reader.start()

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            raise WarmError("the warm server is not running")
        self._sock.send(json.dumps(message).encode())

    def _read(self) -> None:
        """Relay the server's messages to the jobs; when the socket closes, every unfinished job is lost."""
        assert self._sock is not None
        try:
            while True:
                data = self._sock.recv(MAX_MESSAGE)
                if not data:
                    break
                self._dispatch(json.loads(data))
        except OSError:
            pass
        finally:
            self._ready.set()
            with self._lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                job._finish(lost="the warm server ended before this command did")

    def _dispatch(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event == "ready":
            self.ready = message
            self._ready.set()
            return
        if event == "failed":
            print(f"miad: the warm server failed: {message['error']}", file=sys.stderr)
            return
        with self._lock:
            job = self._jobs.get(message["id"])
        if job is None:
            return
        if event == "started":
            job.pid = message["pid"]
        elif event == "cold":
            job.cold_reason = message["reason"]
        elif event == "exit":
            job._finish(message["returncode"])

    def _submit_cold(self, task: Task) -> Job:
        job = self.cold.submit(task)
        self._cold_jobs = [j for j in self._cold_jobs if not j.done()] + [job]
        return job
