"""The `farside` command line: subcommands are loaded lazily from hil.commands."""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from hil.errors import FarsideError
from protocols.errors import ProtocolError

# subcommand name -> module in hil.commands exposing a click command `cli`
SUBCOMMANDS: dict[str, str] = {
    "decode": "decode",
    "board": "board",
    "flash": "flash",
    "relay": "relay",
    "gs": "gs",
    "keys": "keys",
    "mission": "mission",
    "firmware": "firmware",
    "yamcs": "yamcs",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in SUBCOMMANDS if self._load(n) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        module_name = SUBCOMMANDS.get(name)
        if module_name is None:
            return None
        try:
            module = importlib.import_module(f"hil.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"hil.commands.{module_name}":
                return None
            raise
        command: click.Command = module.cli
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="farside")
def cli() -> None:
    """farside: a far-side lunar rover, its relay and its ground station."""


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Warnings in the house style: one line on stderr."""
    click.echo(f"farside: warning: {message}", err=True)


def usage_line(exc: click.UsageError) -> str:
    """A click usage error in the house style: one line, with where to find help on the same line."""
    text = " ".join(exc.format_message().split()).rstrip(".").replace(". Did you mean", "; did you mean")
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    ctx = exc.ctx
    if ctx is not None:
        path = ctx.command_path
        text = f"{text} (see {path} --help)"
    return f"farside: error: {text}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI, turning FarsideError into one line and an exit code."""
    warnings.showwarning = _show_warning
    try:
        result = cli.main(args=argv, prog_name="farside", standalone_mode=False)
    except FarsideError as exc:
        click.echo(f"farside: error: {exc}", err=True)
        return exc.exit_code
    except ProtocolError as exc:
        click.echo(f"farside: error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("farside: aborted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a group run bare: its help
        return exc.exit_code
    except click.UsageError as exc:
        click.echo(usage_line(exc), err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"farside: error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        click.echo(f"farside: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
