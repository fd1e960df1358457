"""The warm worker's server: one process that pins the numeric environment and imports what `miad train` and
`miad evaluate` import, in the order a cold `miad` process imports them, then forks one child per stage command.

Run by `miad.launcher.warm.WarmExecutor` as `python -P -m miad.launcher.zygote --fd N`; never by hand. Each child is
a fresh copy of the same clean server, so nothing one stage does (seeds, torch settings, caches, loaded weights)
can reach another: the server itself never runs a stage, never runs a torch op (torch's OpenMP pool does not exist
when it forks) and never initialises CUDA. What a child still shares with its siblings and a cold process would
draw afresh is drawn afresh in the child: `random` (Python reseeds it at fork), NumPy's global RNG and torch's
default generator (a cold process seeds both from OS entropy).

The libraries read their environment when they load, so a child may only run a command whose cold process would
have loaded them in the same environment: the submitter's environment plus the pin `miad` would apply for that
command's params must equal the server's at load time, up to `RUNTIME_ONLY_ENV`. Otherwise the child execs the
stage's own shell line: a cold process, in the same place, with the same log. Messages both ways are JSON objects,
one per SOCK_SEQPACKET datagram (a child's notice cannot interleave with the server's).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Modules imported before the first fork, in the order a cold `miad train` loads them (numpy and OpenCV through
# miad.data, then torch, safetensors, timm through miad.methods), then what `miad evaluate` adds (SciPy). Loading
# order decides which copy of a shared library binds first; tests/test_warm.py checks it against cold processes.
PRELOAD = ("miad.stages.train", "miad.methods", "miad.stages.evaluate")
# Variables that differ from stage to stage and that only Python code reads, after start-up (DVC's own, the
# benchmark's timing file): a task may differ from the server's environment in these and still run warm.
RUNTIME_ONLY_ENV = frozenset({"DVC_ROOT", "DVC_STAGE", "MIAD_TIMINGS", "PWD", "OLDPWD", "_"})
KILL_GRACE_SECONDS = 5.0  # after SIGTERM, how long a cancelled child has before SIGKILL
POLL_SECONDS = 0.05  # how often the server reaps children and checks kill deadlines
MAX_MESSAGE = 1 << 20


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def comparable(env: dict[str, str]) -> dict[str, str]:
    """The part of an environment that libraries may read when they load."""
    return {k: v for k, v in env.items() if k not in RUNTIME_ONLY_ENV}


def pin_threads(args: argparse.Namespace) -> int:
    """The thread count `miad.cli.pin_numeric_environment` pins for these arguments (same lookup, no side effect)."""
    from miad.cliargs import params_of
    from miad.config import NumericConfig

    if getattr(args, "params", None) and Path(args.params).is_file():
        return params_of(args).active.numeric.threads
    return NumericConfig().threads


def cold_environment(argv: list[str], env: dict[str, str]) -> dict[str, str]:
    """The environment a cold `miad <argv>` started with `env` has once it has pinned (cwd: the task's)."""
    from miad import numeric_env
    from miad.cli import build_parser

    if env.get(numeric_env.UNPINNED_ENV) == "1":
        return dict(env)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # --help, a usage error: the command ends before anything numeric; pinning is moot
        return {**env, **_SERVER["pin"]}
    flags = numeric_env.cpu_flags()
    return {**env, **numeric_env.pinned_values(pin_threads(args), env, avx512=not flags or "avx512f" in flags)}


_SERVER: dict[str, Any] = {}  # the server's load-time environment and pin, for its children


def preload(root: Path) -> dict[str, Any]:
    """Pin as `miad` would for `root`'s params, then import PRELOAD; return what the children compare against."""
    from miad import numeric_env
    from miad.cli import build_parser, pin_numeric_environment

    os.chdir(root)
    before = dict(os.environ)
    pin_numeric_environment(argparse.Namespace(params="params.yaml", profile=None))
    _SERVER["pin"] = {k: v for k, v in os.environ.items() if before.get(k) != v}
    _SERVER["env"] = dict(os.environ)
    build_parser()  # every package's cli, as each `miad` process imports them before its command runs
    for name in PRELOAD:
        importlib.import_module(name)
    torch = sys.modules["torch"]
    assert not torch.cuda.is_initialized(), "the warm server must not initialise CUDA before it forks"
    return {
        "event": "ready",
        "pid": os.getpid(),
        "threads": len(os.listdir("/proc/self/task")),  # OpenBLAS workers only: they stop and restart at fork
        "modules": len(sys.modules),
        "loaded_before_pin": numeric_env._PIN_STATE.get("loaded_before_pin"),
        "pin": _SERVER["pin"],
    }


def _reset_signals() -> None:
    """A cold child's dispositions: Python's own SIGINT handler, the rest as the OS starts a process."""
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _exec_cold(shell_argv: list[str], env: dict[str, str]) -> None:
    """Replace this child with the stage's own shell line, as subprocess.Popen would start it."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):  # Python ignores the first two; exec keeps SIG_IGN
        signal.signal(sig, signal.SIG_DFL)
    os.execvpe(shell_argv[0], shell_argv, env)


def _fresh_random_state() -> None:
    """Draw the process-wide generators afresh, as a cold process's imports do (`random` reseeded at fork)."""
    np, torch = sys.modules["numpy"], sys.modules["torch"]
    np.random.seed()  # NumPy's legacy global RandomState, seeded from OS entropy at import
    torch.seed()  # torch's default CPU generator, seeded from OS entropy at start-up


def child(request: dict[str, Any], sock: socket.socket) -> None:
    """Run one command in this freshly forked process and leave with its exit status; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: a cancel reaches whatever the command starts
        _reset_signals()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(request["cwd"])
        env, argv = request["env"], request["miad_argv"]
        try:
            wanted = cold_environment(argv, env)
            reason = "" if comparable(wanted) == comparable(_SERVER["env"]) else "environment"
        except Exception as exc:  # unreadable params: the cold process reports it in its own words
            reason = f"{type(exc).__name__}"
        if reason:
            send(sock, {"id": request["id"], "event": "cold", "reason": reason})
            sock.close()
            _exec_cold(request["shell_argv"], env)
        sock.close()
        os.environ.clear()
        os.environ.update(wanted)
        sys.argv = [request["program"], *argv]
        _fresh_random_state()
        from miad.cli import main

        code = main(argv, pin_environment=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:  # as the interpreter would: the traceback on stderr, exit status 1
        traceback.print_exc()
        code = 1
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # what interpreter shutdown runs (logging, tqdm, ...)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


class Server:
    """The fork loop: a `run` request forks a child, `cancel` signals its group, `close` (or the executor's end of
    the socket closing) ends every child and then the server."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: dict[int, int] = {}  # pid -> request id
        self.deadlines: dict[int, float] = {}  # pid -> when SIGKILL follows the SIGTERM of a cancel

    def serve(self) -> None:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        while True:
            if selector.select(timeout=POLL_SECONDS):
                data = self.sock.recv(MAX_MESSAGE)
                if not data or not self.handle(json.loads(data)):
                    break
            self.reap()
            self.enforce_deadlines()
        self.shutdown()

    def handle(self, message: dict[str, Any]) -> bool:
        """Act on one request; False: leave the loop."""
        op = message["op"]
        if op == "run":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(message, self.sock)
            self.children[pid] = message["id"]
            send(self.sock, {"id": message["id"], "event": "started", "pid": pid})
        elif op == "cancel":
            for pid, ident in self.children.items():
                if ident == message["id"]:
                    self.signal(pid, signal.SIGTERM)
                    self.deadlines.setdefault(pid, time.monotonic() + message.get("grace", KILL_GRACE_SECONDS))
        return op != "close"

    def signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ident = self.children.pop(pid, None)
            self.deadlines.pop(pid, None)
            if ident is not None:
                code = os.waitstatus_to_exitcode(status)
                with contextlib.suppress(OSError):  # the executor is gone: nobody to tell
                    send(self.sock, {"id": ident, "event": "exit", "returncode": code})

    def enforce_deadlines(self) -> None:
        now = time.monotonic()
        for pid, deadline in list(self.deadlines.items()):
            if now >= deadline:
                self.signal(pid, signal.SIGKILL)
                del self.deadlines[pid]

    def shutdown(self) -> None:
        """SIGTERM every child's group, SIGKILL what is left after the grace period, reap them all."""
        for pid in self.children:
            self.signal(pid, signal.SIGTERM)
        end = time.monotonic() + KILL_GRACE_SECONDS
        while self.children and time.monotonic() < end:
            self.reap()
            time.sleep(POLL_SECONDS)
        for pid in self.children:
            self.signal(pid, signal.SIGKILL)
        while self.children:
            self.reap()
            time.sleep(POLL_SECONDS / 5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m miad.launcher.zygote")
    parser.add_argument("--fd", type=int, required=True, help="this end of the executor's socket pair")
    parser.add_argument("--root", type=Path, required=True, help="the project whose params the pin follows")
    parser.add_argument("--path0", required=True, help="sys.path[0] of a cold `miad` process (its script's folder)")
    options = parser.parse_args()
    sys.argv = [sys.argv[0]]
    sys.path.insert(0, options.path0)
    sock = socket.socket(fileno=options.fd)
    sock.set_inheritable(False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain kill still ends the children first
    server = Server(sock)
    try:
        send(sock, preload(options.root))
        server.serve()
    except SystemExit:
        server.shutdown()
    except BaseException as exc:  # tell the executor why before going
        try:
            send(sock, {"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        finally:
            server.shutdown()
            raise


if __name__ == "__main__":
    main()
