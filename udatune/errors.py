"""User-facing errors.

Anything a user can fix (a missing folder, a bad option, a broken file) is raised as a
`UdatuneError` whose message is one paragraph: what is wrong, which file or option, and
what to do. The CLI prints it without a traceback and exits with the error's ``exit_code``:
2 for a mistake in the input, 1 for a run that started and failed, 130 for an interruption.
"""


class UdatuneError(Exception):
    """An error caused by user input, with a message meant to be read as is."""

    exit_code = 2


class DataError(UdatuneError):
    """A dataset on disk is missing, incomplete or inconsistent."""


class ConfigError(UdatuneError):
    """An option or configuration file has a value udatune cannot use."""


class RunFailed(UdatuneError):
    """A run that started could not finish (its loss diverged, ...); what it wrote is kept."""

    exit_code = 1


class RunInterrupted(UdatuneError):
    """The user stopped a run (Ctrl-C, SIGTERM); the message says how to carry on."""

    exit_code = 130
