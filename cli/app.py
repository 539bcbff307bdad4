"""The `udatune` command: parse, validate, call the library. Nothing else lives here.

User mistakes surface as `UdatuneError`; `main` prints them as one paragraph and exits 2,
so a user never sees a traceback for a problem they can fix.
"""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console

from udatune.errors import UdatuneError

app = typer.Typer(
    name="udatune",
    help="Find out how much unlabeled images lift a segmentation model (UDA), and with which settings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _register_commands() -> None:
    from udatune.cli import augment_commands, ls_command, report_commands, resume_command, search_command, train_command  # noqa: F401  (commands register on import)


def main(argv: list[str] | None = None) -> int:
    _register_commands()
    try:
        app(args=argv, standalone_mode=False)
    except UdatuneError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("[yellow]aborted[/]")
        return 130
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as err:
        err.show()
        return err.exit_code
    return 0


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
