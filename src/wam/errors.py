"""User-facing errors.

A `WamError` carries a message meant for a person (it names the file, field or value that is
wrong and, where possible, what would be right). The command line prints it on one line and exits
with status 2, without a traceback. Anything else that escapes is a bug in wam.
"""


class WamError(Exception):
    """An error caused by the user's input (files, flags, names), explained in its message."""


class DatasetError(WamError):
    """A dataset on disk is missing, truncated, or does not match the LeRobot v3.0 schema."""


class ConfigError(WamError):
    """A configuration value, override or name is invalid."""
