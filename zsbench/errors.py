"""Errors a user can cause and fix: the CLI prints them as one paragraph and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in a spec, a path, a plugin name or a data file; never a bug in zsbench."""

    exit_code = 2


class SpecError(UserError):
    """A benchmark spec that cannot be run; the message names file, key path and expectation."""

    def __init__(self, file: str, key: str, message: str):
        self.file, self.key, self.reason = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class DataError(UserError):
    """A data file that is missing, malformed or inconsistent; the message names the file."""

    def __init__(self, file, message: str):
        self.file = str(file)
        super().__init__(f"{file}: {message}")


class PluginError(UserError):
    """An unknown, duplicate or broken plugin."""


class ResourceError(UserError):
    """The machine ran out of something (memory, file handles, disk): never a damaged file."""


RESOURCE_ERRNOS = {12, 23, 24, 28}  # ENOMEM, ENFILE, EMFILE, ENOSPC


def is_resource_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the machine, not the file, is the problem."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS)


def resource_error(path, exc: BaseException) -> ResourceError:
    return ResourceError(
        f"{path}: could not be read for lack of resources ({type(exc).__name__}: {exc or 'out of memory'}); "
        "the file is not known to be damaged and was kept. Free memory, close other jobs or lower --threads"
    )
