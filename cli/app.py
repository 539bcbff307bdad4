"""The `udatune` command: parse, validate, call the library. Nothing else lives here.

Exit codes scripts can rely on: 0 done, 1 a run that failed (diverged, crashed), 2 a user
error (bad option, file or data), 130 interrupted. A user never sees a traceback: user
mistakes surface as `UdatuneError` and print as one paragraph; anything else is a bug, printed
as one paragraph that points to the traceback saved in a file (``UDATUNE_DEBUG=1`` re-raises).
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.text import Text

from udatune.cli.usage import CLICK_ABORT, CLICK_ERRORS, CLICK_EXIT, save_traceback
from udatune.errors import RunInterrupted, UdatuneError

app = typer.Typer(
    name="udatune",
    help="Find out how much unlabeled images lift a segmentation model (UDA), and with which settings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _register_commands() -> None:
    from udatune.cli import augment_commands, ls_command, report_commands, resume_command, search_command, train_command  # noqa: F401  (commands register on import)


def main(argv: list[str] | None = None) -> int:
    _register_commands()
    try:
        app(args=argv, standalone_mode=False)
    except RunInterrupted as stop:
        _say("interrupted:", "yellow", str(stop))
        return EXIT_INTERRUPTED
    except UdatuneError as err:
        _say("error:", "bold red", str(err))
        return err.exit_code
    except (*CLICK_ABORT, KeyboardInterrupt):
        _say("interrupted:", "yellow", "stopped before anything ran to completion.")
        return EXIT_INTERRUPTED
    except CLICK_EXIT as done:
        return done.exit_code
    except CLICK_ERRORS as err:
        err.show()
        return err.exit_code
    except Exception as bug:  # a bug in udatune or a dependency: say so, keep the details in a file
        if os.environ.get("UDATUNE_DEBUG"):
            raise
        where = save_traceback(bug)
        _say("internal error:", "bold red",
             f"{type(bug).__name__}: {bug}. This is a bug in udatune, not in your input; the full traceback "
             f"is in {where}. Please report it with that file (set UDATUNE_DEBUG=1 to see it here).")
        return EXIT_FAILED
    return 0


def _say(label: str, style: str, message: str) -> None:
    """One paragraph on stderr; the message is plain text (its brackets are not rich markup)."""
    err_console.print(Text.assemble((label, style), " ", message), highlight=False, soft_wrap=True)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


@app.command()
def version() -> None:
    """Print udatune's version."""
    from udatune import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    run()
