"""The ``Typer`` every rollguard command group is built with: help without stray placeholders.

Typer's rich help prints each option's type in a column, a flag's too
(``--execute <bool>``), though a flag takes no value: a reader types
``--execute true`` and gets an error. Its usage line writes a required
argument in braces (``rollguard policy check [OPTIONS] {files}...``), which
reads like a template left unfilled, and a repeated argument's type as
``<list[Path]>``, a Python annotation. :class:`App` builds its groups and
commands with classes that show flags without a type and arguments the usual
way (``FILE...``, ``[REPORT]``, ``<path>...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

#: How typer writes a repeated argument's type: ``<list[Path]>``.
_LIST_TYPE = re.compile(r"<list\[(\w+)\]>")


def _plain(shown: str | None) -> str | None:
    found = _LIST_TYPE.fullmatch(shown or "")
    return f"<{found.group(1).lower()}>..." if found else shown


class _RepeatedArgument(TyperArgument):
    """An argument taking several values: its type reads ``<path>...``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return _plain(super().display_type_rich(ctx))


class _RepeatedOption(TyperOption):
    """An option given several times: its type reads ``<path>...``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return _plain(super().display_type_rich(ctx))


def _tidy(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # shown as is: nothing in the type column
        # typer builds the parameters itself: the class is swapped for one that says it
        if type(param) is TyperArgument and param.nargs != 1:
            param.__class__ = _RepeatedArgument
        elif type(param) is TyperOption and param.multiple:
            param.__class__ = _RepeatedOption
    return params


def _usage(argument: TyperArgument) -> str:
    name = (argument.metavar or argument.name or "ARG").upper()
    name = name if argument.required else f"[{name}]"
    return name + ("..." if argument.nargs != 1 else "")


class Command(TyperCommand):
    """A command whose flags (``--help`` included) show no type in the help, and whose
    usage line names arguments as ``FILE``, ``[REPORT]``, ``FILE...``."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    """A command group whose own flags (``--version``, ``--help``) show no type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy(super().get_params(ctx))


class App(typer.Typer):
    """``typer.Typer`` whose groups and commands use :class:`Group` and :class:`Command`."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(cls=Group, **settings)

    def command(self, name: str | None = None, **settings: Any) -> Callable[[Any], Any]:
        settings.setdefault("cls", Command)
        return super().command(name, **settings)
