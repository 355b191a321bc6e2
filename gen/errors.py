"""The one error type for bad user input.

Raised where input is validated (flags, files, configs, checkpoints). The command line turns
it, and only it, into a one-line message with exit code 2; any other exception is a bug and
keeps its traceback. It is a ValueError, so Python callers can catch either.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a flag, a file, a config value or a checkpoint."""
