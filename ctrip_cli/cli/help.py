"""`--help` as plain text, laid out by click's own help formatter; options left out
cost nothing.

Typer's Rich help imports rich.markdown, markdown-it, pygments and rich.traceback,
which cost every `ctrip ... --help` more than Typer itself does. Help texts here keep
the Rich markup they are written in (`[bold]ctrip scan[/]`); the plain help drops it.
A paragraph with indented lines (a list of commands, examples) is printed as written;
any other paragraph is rewrapped to the terminal's width. Usage errors still go
through Typer's Rich error panel: they are rare, and their text is part of the CLI.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# Context and formatter are typed Any: they are click's classes, which Typer vendors
# (typer._click) in some releases and imports from click in others.

# The Rich styles help texts use, and their closing tags (`[/]`, `[/bold]`). Anything
# else in brackets, such as `[default: 30m]`, is text.
_MARKUP = re.compile(
    r"\[/?(?:bold|b|italic|i|dim|underline|u|red|green|yellow|cyan)?\]"
)


def plain(text: str) -> str:
    """`text` without the Rich markup of help texts."""
    return _MARKUP.sub("", text)


def _paragraphs(help_text: str | None) -> list[str]:
    text = inspect.cleandoc(help_text or "").partition("\f")[0]
    return [p for p in plain(text).split("\n\n") if p.strip()]


def short_help(command: Any) -> str:
    """A command's first paragraph on one line (what the command list shows)."""
    if command.short_help:
        return plain(str(command.short_help))
    paragraphs = _paragraphs(command.help)
    return " ".join(paragraphs[0].split()) if paragraphs else ""


def _write_help_text(command: Any, formatter: Any) -> None:
    for paragraph in _paragraphs(command.help):
        formatter.write_paragraph()
        with formatter.indentation():
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines):  # laid out: keep as written
                indent = " " * formatter.current_indent
                formatter.write("".join(f"{indent}{line}\n" for line in lines))
            else:
                formatter.write_text(paragraph)


def _write_help(command: Any, ctx: Any, formatter: Any) -> None:
    command.format_usage(ctx, formatter)
    _write_help_text(command, formatter)
    command.format_options(ctx, formatter)  # options, then (groups) commands


class _Option(TyperOption):
    def process_value(self, ctx: Any, value: Any) -> Any:
        return _left_out(self, ctx, value)


class _Argument(TyperArgument):
    def process_value(self, ctx: Any, value: Any) -> Any:
        return _left_out(self, ctx, value)


def _left_out(param: _Option | _Argument, ctx: Any, value: Any) -> Any:
    """An optional single value that was not given is None without a type check.

    Typer checks every value, None included, with a pydantic TypeAdapter it builds on
    first use; for `ctrip scan --help` that alone would import pydantic (the root
    options are processed before the subcommand's `--help`).
    """
    if value is None and not param.required and param.nargs == 1 and not param.multiple:
        return None if param.callback is None else param.callback(ctx, param, None)
    base = TyperOption if isinstance(param, TyperOption) else TyperArgument
    return base.process_value(param, ctx, value)


_LIGHT: dict[type, type] = {TyperOption: _Option, TyperArgument: _Argument}


def _lightened(params: list[Any]) -> list[Any]:
    """`params`, each Typer option and argument now one of the classes above."""
    for param in params:
        light = _LIGHT.get(type(param))
        if light is not None:
            param.__class__ = light
    return params


class HelpCommand(TyperCommand):
    """A Typer command whose `--help` is plain text."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _lightened(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _write_help(self, ctx, formatter)


class HelpGroup(TyperGroup):
    """A Typer group whose `--help` (also shown when it is run without arguments)
    is plain text and lists each command with its whole first paragraph."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _lightened(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _write_help(self, ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, short_help(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Typer's Rich error handler prints nothing for "no arguments, show the help"
        # (its Rich help has printed itself by then): print it here, exit 2 as before.
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help(), color=ctx.color)
            raise typer.Exit(2)
        return super().parse_args(ctx, args)


class App(typer.Typer):
    """ctrip's Typer app: plain help for the app, its commands and sub-apps, usage
    errors in Rich panels, no local variables in tracebacks (they may hold secrets).

    A command registers with `@app.command()` as on any Typer app.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            cls=HelpGroup,
            no_args_is_help=True,
            rich_markup_mode="rich",
            pretty_exceptions_show_locals=False,
            **kwargs,
        )

    def command(  # type: ignore[override]
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        kwargs.setdefault("cls", HelpCommand)
        return super().command(name, **kwargs)
