"""The ``rollguard`` command: thin typer commands that parse and delegate.

Command modules import heavy libraries inside their functions, so that
``rollguard --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from rollguard.cli import (
    audit_cmd,
    backtest_cmd,
    baseline_cmd,
    controller_cmd,
    demo_cmd,
    drill_cmd,
    gate_cmd,
    generate_cmd,
    help_format,
    out,
    pipe,
    policy_cmd,
    release_cmd,
    report_cmd,
    security_cmd,
    serve_cmd,
    watch_cmd,
)
from rollguard.errors import ExitCode, RollguardError, exit_codes_help

#: 128 + SIGPIPE: what a shell reports for a tool whose reader closed the pipe.
BROKEN_PIPE_EXIT = int(ExitCode.BROKEN_PIPE)

EXIT_CODES_HELP = "\n\n" + exit_codes_help()

app = help_format.App(
    name="rollguard",
    help="Watch a release, decide, roll it back before users feel it, and keep an audit trail."
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        out.echo(f"rollguard {version('rollguard')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Watch a release, decide, roll it back before users feel it, and keep an audit trail."""


app.add_typer(policy_cmd.app, name="policy")
app.add_typer(generate_cmd.app, name="generate")
app.command(name="watch", help=watch_cmd.HELP)(watch_cmd.watch)
app.command(name="backtest", help=backtest_cmd.HELP)(backtest_cmd.backtest)
app.add_typer(audit_cmd.app, name="audit")
app.command(name="gate")(gate_cmd.gate)
app.add_typer(baseline_cmd.app, name="baseline")
app.command(name="demo", help=demo_cmd.HELP)(demo_cmd.demo)
app.command(name="report")(report_cmd.report)
app.add_typer(security_cmd.app, name="security")
app.command(name="serve")(serve_cmd.serve)
app.command(name="drill", help=drill_cmd.HELP)(drill_cmd.drill)
app.command(name="controller", help=controller_cmd.HELP)(controller_cmd.controller)
app.add_typer(release_cmd.app, name="release")


def run() -> None:
    """Console-script entry point: user errors become one message and an exit code.

    Click handles its own usage errors (exit 2); rollguard's errors are caught here.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): exit as a tool killed by SIGPIPE
        # would, never 1 (the "rolled back" code). `watch` keeps watching instead.
        pipe.silence_stdout()
        sys.exit(BROKEN_PIPE_EXIT)
    except RollguardError as exc:
        out.error(exc)  # quotes user input: never markup, emoji or terminal controls
        sys.exit(int(exc.exit_code))
