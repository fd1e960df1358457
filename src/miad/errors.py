"""The one base class of errors caused by input (params, paths, data): `miad` prints them without a traceback."""

from __future__ import annotations


class MiadError(Exception):
    """An error the user can act on: its message names the file, key or value and what was expected."""


class UserError(MiadError):
    """A command-line argument or combination of arguments that cannot be used."""
