"""The `tstack` command line, assembled: the error boundary, the process environment, and every command from
`tstack.commands`. Errors become one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click import exceptions as usage  # typer >= 0.20 vendors click as typer._click
from typer.core import TyperGroup

from tstack.errors import TstackError

# OpenMP's default spin-waiting makes torch's 2-thread runs 5-7x slower as soon as another process takes a core
# (measured while training the NAS supernet on a shared 2-core machine); passive waiting costs nothing when idle.
# It must be set before torch loads, and a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def one_line(text: str) -> str:
    """`text` on one line: the CLI's promise is one line on stderr per error."""
    return " ".join(text.split())


def _short(name: object, limit: int = 80) -> str:
    """A file name from an error, cut to `limit` characters so that the error line stays readable."""
    text = str(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _OneLineErrors(TyperGroup):
    """The CLI's error boundary, in the app itself so that the console script, `python -m tstack` and in-process
    runners behave alike: a `TstackError` or a usage error (unknown option, a value of the wrong type) becomes one
    line `error: ...` on stderr and exit code 2, never a traceback or a framed panel."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except usage.NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(2)
        except usage.UsageError as exc:
            where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
            typer.echo(one_line(f"error: {exc.format_message().rstrip('.')}{where}"), err=True)
            sys.exit(exc.exit_code)
        except usage.ClickException as exc:
            typer.echo(one_line(f"error: {exc.format_message()}"), err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except TstackError as exc:
            typer.echo(one_line(f"error: {exc}"), err=True)
            sys.exit(2)
        except OSError as exc:
            # A path the system refuses before any loader can say why (a name too long to stat, a fifo, ...): the
            # loaders turn the paths they expect into TstackErrors; this keeps the promise for the rest.
            typer.echo(one_line(f"error: {_short(exc.filename)}: {exc.strerror or exc}; check the path"), err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="tstack",
    help="Full-stack optimization of Transformer inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_OneLineErrors,
)


def _register_commands() -> None:
    """Every command lives in `tstack.commands`; each module adds its own (and imports its heavy dependencies only
    when run). The order here is the order `tstack --help` lists them in."""
    from tstack.commands import (
        analyze,
        codesign,
        fusion,
        hardware,
        kernels,
        mapping,
        nas,
        presets,
        profile,
        simulate,
        study,
    )

    analyze.register(app)
    presets.register(app)
    simulate.register(app)
    mapping.register(app)
    fusion.register(app)
    hardware.register(app)
    kernels.register(app)
    nas.register(app)
    codesign.register(app)
    profile.register(app)
    study.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
