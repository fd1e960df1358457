"""The paper profile rehearsed on CPU: every stage of the `paper` path with only the image counts shrunk.

`miad rehearse` copies the project into a scratch folder, writes the paper backbones there as randomly
initialised weights files of the exact architectures, shrinks the paper profile's image counts (and its
epochs to 1), runs `miad assets restore` and `dvc repro`, and checks that every table got its cells.
The user's workspace is never written.
"""

from miad.errors import MiadError


class RehearsalError(MiadError, ValueError):
    """A bad rehearsal request (folder, scenario or method); printed without a traceback."""
