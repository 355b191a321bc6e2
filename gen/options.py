"""Command-line options made from the config dataclasses: a field declared with
`gen.configs.setting` brings its flag, type, checks, help text, default per preset and option
group, so a new setting is one edit. Every generated option defaults to None ("not given"):
the preset's value, or a saved config's, stands unless the flag is on the command line.

No torch here: `gen --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import click

from gen.configs import GROUPS

GROUP_TITLES = {
    "run": "Run",
    "data": "Data",
    "generator": "Generator",
    "discriminator": "Discriminator",
    "model": "Model",
    "loss": "Loss and optimiser",
    "speed": "Speed and device",
    "evaluation": "Evaluation",
}


@dataclass(frozen=True)
class FieldOption:
    """A generated option and the config field it sets (its path through nested configs)."""

    option: click.Option
    path: tuple[str, ...]
    choices: tuple[Any, ...] | None

    @property
    def name(self) -> str:
        return self.option.name

    def value(self, given: Any) -> Any:
        """The field value of a parsed option: choices come back in the field's own type."""
        if self.choices is not None:
            return next(choice for choice in self.choices if str(choice) == given)
        return given


def base_type(hint: Any) -> Any:
    """int for `int | None`, and so on."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if args else hint


def click_type(field: dataclasses.Field, kind: Any) -> Any:
    meta = field.metadata
    if meta["choices"] is not None:
        return click.Choice([str(choice) for choice in meta["choices"]])
    if meta["path"] == "file":  # saved absolute, so a resume from elsewhere finds it
        return click.Path(dir_okay=False, resolve_path=True)
    if meta["path"]:
        return click.Path()
    if kind in (int, float) and (meta["minimum"] is not None or meta["maximum"] is not None):
        ranged = click.IntRange if kind is int else click.FloatRange
        return ranged(min=meta["minimum"], max=meta["maximum"])
    return kind


def field_options(
    config: type,
    default_text: Callable[[tuple[str, ...], dataclasses.Field], str],
    prefix: tuple[str, ...] = (),
) -> list[FieldOption]:
    """One option per `setting` field of a config dataclass and of the configs nested in it."""
    hints = typing.get_type_hints(config)
    made = []
    for field in dataclasses.fields(config):
        kind = base_type(hints[field.name])
        path = (*prefix, field.name)
        if dataclasses.is_dataclass(kind):
            made += field_options(kind, default_text, path)
            continue
        if "help" not in field.metadata:
            continue
        meta = field.metadata
        flag = "--" + (meta["flag"] or field.name).replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        name = (meta["flag"] or field.name).replace("-", "_")
        help_text = f"{meta['help']} [default: {meta['default_help'] or default_text(path, field)}]"
        option = click.Option(
            [*decls, name],
            type=None if kind is bool else click_type(field, kind),
            default=None,
            help=help_text,
        )
        option.group = meta["group"]
        made.append(FieldOption(option, path, meta["choices"]))
    return made


def add_options(options: Iterable[click.Option]):
    """A decorator adding options to a click command, in order."""

    def decorate(command):
        for option in reversed(list(options)):
            command.__click_params__ = [*getattr(command, "__click_params__", []), option]
        return command

    return decorate


def grouped(option: click.Option, group: str) -> click.Option:
    option.group = group
    return option


def collect(options: Iterable[FieldOption], values: dict[str, Any]) -> dict[str, Any]:
    """The given options' values as nested overrides ({"generator": {"width": 4}, "g_lr": ...}),
    taken out of `values`."""
    overrides: dict[str, Any] = {}
    for item in options:
        given = values.pop(item.name, None)
        if given is None:
            continue
        target = overrides
        for key in item.path[:-1]:
            target = target.setdefault(key, {})
        target[item.path[-1]] = item.value(given)
    return overrides


class GroupedCommand(click.Command):
    """A command whose help lists its options under their groups (run, data, generator, ...)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "group", "run"), []).append(record)
        for group in sorted(sections, key=lambda name: GROUPS.index(name) if name in GROUPS else -1):
            with formatter.section(f"{GROUP_TITLES.get(group, group.title())} options"):
                formatter.write_dl(sections[group])
