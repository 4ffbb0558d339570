"""Errors a user can cause and fix: the CLI prints them as one paragraph and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in a spec, a path, a plugin name or a data file; never a bug in zsbench."""

    exit_code = 2


class SpecError(UserError):
    """A benchmark spec that cannot be run; the message names file, key path and expectation."""

    def __init__(self, file: str, key: str, message: str):
        self.file, self.key = file, key
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class DataError(UserError):
    """A data file that is missing, malformed or inconsistent; the message names the file."""

    def __init__(self, file, message: str):
        self.file = str(file)
        super().__init__(f"{file}: {message}")


class PluginError(UserError):
    """An unknown, duplicate or broken plugin."""
