"""The error types that are not bugs.

InputError is bad user input, raised where input is validated (flags, files, configs,
checkpoints): the command line turns it into a one-line message with exit code 2.
RunStopped is a run that had to stop (training diverged, a checkpoint could not be
written): one line, exit code 1. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a flag, a file, a config value or a checkpoint."""


class RunStopped(RuntimeError):
    """A training run that had to stop early for a reason the user must act on; its last
    good checkpoint is intact."""
