"""A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd started from a scratch folder.

Everything (config, state, spool, logs, the munge socket, free TCP ports) lives under one temporary folder, so a
session's cluster touches nothing of the machine's own setup. `.ci/slurm-install` puts the packages on a fresh CI
machine; where they are missing and cannot be installed, the Slurm tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue")
MUNGE_KEY = Path("/etc/munge/munge.key")


def missing_binaries() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]


def unusable_reason() -> str | None:
    """Why this machine cannot start the test cluster (a message for pytest.skip), or None when it can."""
    missing = missing_binaries()
    if missing:
        return f"Slurm is not installed ({missing} missing): run .ci/slurm-install as root"
    if os.geteuid() != 0:
        return "the one-node test cluster runs slurmctld and slurmd as root (SlurmUser=root): run the tests as root"
    if not os.access(MUNGE_KEY, os.R_OK):
        return f"munged cannot read its key {MUNGE_KEY}: run .ci/slurm-install as root"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def write_config(root: Path, cpus: int = 2) -> Path:
    """slurm.conf for one node (this host) with `cpus` CPUs, every path under `root`."""
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lines = [
        "ClusterName=miadtest",
        f"SlurmctldHost={host}",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge.sock'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/backfill",
        "ReturnToService=2",
        "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MinJobAge=3600",  # finished jobs stay visible to `scontrol show job` (there is no accounting database)
        "KillWait=5",
        "InactiveLimit=0",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        f"NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO",
    ]
    conf = root / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf


def _wait(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise RuntimeError(f"Slurm test cluster: {what} did not come up within {timeout:.0f}s")


def _daemon(name: str, conf: Path, root: Path, env: dict[str, str]) -> subprocess.Popen:
    with (root / "log" / f"{name}.out").open("wb") as out:
        return subprocess.Popen([_binary(name), "-D", "-f", str(conf)], env=env, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def slurm_cluster(root: Path, cpus: int = 2) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under `root`; yield the environment the Slurm commands need."""
    conf = write_config(root, cpus)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    procs: list[subprocess.Popen] = []
    pids = [root / "munged.pid", root / "slurmctld.pid", root / "slurmd.pid"]
    try:
        subprocess.run(
            [
                _binary("munged"),
                f"--socket={root / 'munge.sock'}",
                f"--key-file={MUNGE_KEY}",
                f"--pid-file={pids[0]}",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--seed-file={root / 'munge.seed'}",
                "--force",
            ],
            check=True,
            env=env,
        )
        procs.append(_daemon("slurmctld", conf, root, env))
        _wait(lambda: subprocess.run(["scontrol", "ping"], env=env, capture_output=True).returncode == 0, "slurmctld")
        procs.append(_daemon("slurmd", conf, root, env))

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            return out.strip().startswith("idle")

        _wait(node_idle, "slurmd (node idle)")
        yield {"SLURM_CONF": str(conf)}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pids[0].exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pids[0].read_text().strip()), 15)
