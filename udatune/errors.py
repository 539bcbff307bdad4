"""User-facing errors.

Anything a user can fix (a missing folder, a bad option, a broken file) is raised as a
`UdatuneError` whose message is one paragraph: what is wrong, which file or option, and
what to do. The CLI prints it without a traceback and exits with code 2.
"""


class UdatuneError(Exception):
    """An error caused by user input, with a message meant to be read as is."""


class DataError(UdatuneError):
    """A dataset on disk is missing, incomplete or inconsistent."""


class ConfigError(UdatuneError):
    """An option or configuration file has a value udatune cannot use."""
