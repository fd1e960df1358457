"""The one base class of errors caused by input (params, paths, data): `miad` prints them without a traceback."""

from __future__ import annotations


class MiadError(Exception):
    """An error the user can act on: its message names the file, key or value and what was expected."""


class UserError(MiadError):
    """A command-line argument or combination of arguments that cannot be used."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C, so every `finally` and `except BaseException` cancels what it started
    (local task groups, Slurm jobs) and no half-written output is recorded."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM raises Interrupted in the main thread (call it once, in the program's entry)."""
    import signal

    def _raise(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, _raise)
