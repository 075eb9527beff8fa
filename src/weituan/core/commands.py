"""The base of Weituan's own management commands: a bad option or argument is one line, as for `serve`."""

from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser


class _OneLineParser(CommandParser):
    def error(self, message: str) -> NoReturn:
        # Django's parser raises CommandError when a command is called from code; keep that.
        if not self.called_from_command_line:
            super().error(message)
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class WeituanCommand(BaseCommand):
    """A command that, run from the command line, answers bad input with one line and exit status 2
    instead of argparse's usage block followed by the error."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser itself; only its error reporting changes, so the class is swapped.
        parser.__class__ = _OneLineParser
        return parser
