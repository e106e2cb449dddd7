"""The command line and its documentation agree, both ways.

Every ``syncd ...`` written in README.md or docs/*.md (in code spans and code blocks) must name
a real command and real options of that command; every command and option of the real command
tree must be written somewhere with its command. The tree is the one ``syncd`` runs:
``syncd.cli.main``, with ``demo`` registered as the CLI registers it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from syncd.cli import main
from syncd.demo.cli import demo_command

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Code spans that start with "syncd" but are not commands.
NOT_COMMANDS = {"syncd listening": "the daemon's start-up log event"}


def command_tree() -> click.Group:
    if "demo" not in main.commands:
        main.add_command(demo_command)
    return main


@dataclass(frozen=True)
class Mention:
    where: str
    text: str


def code_texts(text: str) -> Iterator[str]:
    """The contents of fenced code blocks (line by line) and of inline code spans.

    In code blocks, lines that do not start a command are output (an error message quoting
    "another syncd (pid ...)"), and are skipped by ``mentions``.
    """
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            yield line.strip().removeprefix("$ ")
        else:
            yield from re.findall(r"`([^`]+)`", line)


def mentions() -> list[Mention]:
    found = []
    for path in DOCS:
        for code in code_texts(path.read_text(encoding="utf-8")):
            # a command starts its line, span, or a step of a shell line (after && or ;)
            for part in re.split(r"&&|;", code):
                text = part.strip()
                if (text == "syncd" or text.startswith("syncd ")) and text not in NOT_COMMANDS:
                    found.append(Mention(path.name, text))
    return found


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s\[\]()]+", text.replace("\\|", "|")) if t]


@dataclass
class Resolved:
    path: tuple[str, ...]
    command: click.Command
    options: list[str]


def resolve(mention: Mention) -> list[Resolved]:
    """The commands a mention names (``list|show`` names several) and the options it uses."""
    tokens = _tokens(mention.text)[1:]
    return _walk(command_tree(), ("syncd",), tokens, mention)


def _walk(cmd: click.Command, path: tuple[str, ...], tokens: list[str], mention: Mention) -> list[Resolved]:
    if not isinstance(cmd, click.Group):
        rest = [t.split("=", 1)[0] for t in tokens if t.startswith("--") or re.fullmatch(r"-[a-zA-Z]", t)]
        return [Resolved(path, cmd, rest)]
    # options given to a group, before its subcommand: `syncd --config PATH validate`
    own: list[str] = []
    while tokens and tokens[0].startswith("-"):
        own.append(tokens.pop(0).split("=", 1)[0])
        if tokens and not tokens[0].startswith("-") and tokens[0] not in cmd.commands:
            tokens.pop(0)  # the option's value
    out = [Resolved(path, cmd, own)]
    if not tokens or tokens[0] in ("...", "|"):
        return out
    names = tokens[0].split("|")
    if not all(n in cmd.commands for n in names):
        raise AssertionError(
            f"{mention.where}: `{mention.text}`: {' '.join(path)} has no command {tokens[0]!r}"
        )
    for name in names:
        out += _walk(cmd.commands[name], (*path, name), tokens[1:], mention)
    return out


def option_names(cmd: click.Command) -> set[str]:
    return {name for p in cmd.params if isinstance(p, click.Option) for name in (*p.opts, *p.secondary_opts)}


def all_commands() -> Iterator[tuple[tuple[str, ...], click.Command]]:
    def walk(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, (*path, name))

    return walk(command_tree(), ("syncd",))


def documented() -> dict[tuple[str, ...], set[str]]:
    seen: dict[tuple[str, ...], set[str]] = {}
    for mention in mentions():
        for found in resolve(mention):
            seen.setdefault(found.path, set()).update(found.options)
    return seen


def test_the_docs_mention_commands_at_all() -> None:
    assert len(mentions()) > 40


def test_every_documented_command_and_option_exists() -> None:
    for mention in mentions():
        for found in resolve(mention):
            unknown = set(found.options) - option_names(found.command) - {"--help"}
            assert not unknown, (
                f"{mention.where}: `{mention.text}`: {' '.join(found.path)} has no option {sorted(unknown)}"
            )


def test_every_command_is_documented() -> None:
    seen = documented()
    missing = [
        " ".join(path)
        for path, cmd in all_commands()
        if not isinstance(cmd, click.Group) and path not in seen
    ]
    assert not missing, f"commands no doc mentions: {missing}"


def test_every_option_is_documented_with_its_command() -> None:
    seen = documented()
    missing = []
    for path, cmd in all_commands():
        for param in cmd.params:
            if isinstance(param, click.Option) and not set(param.opts) & seen.get(path, set()):
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert not missing, f"options no doc mentions with their command: {missing}"


@pytest.mark.parametrize(
    ("text", "path", "options"),
    [
        ("syncd conflicts resolve ID --take APP", ("syncd", "conflicts", "resolve"), ["--take"]),
        ("syncd --config PATH validate", ("syncd",), ["--config"]),
        ("syncd sync --once [--json]", ("syncd", "sync"), ["--once", "--json"]),
    ],
)
def test_mentions_resolve_to_their_command_and_options(
    text: str, path: tuple[str, ...], options: list[str]
) -> None:
    found = [r for r in resolve(Mention("test", text)) if r.options]
    assert [(r.path, r.options) for r in found] == [(path, options)]


def test_alternatives_name_every_subcommand_and_unknown_commands_fail() -> None:
    found = resolve(Mention("test", "syncd deadletters list|show|replay|drop"))
    assert [r.path[-1] for r in found if not isinstance(r.command, click.Group)] == [
        "list",
        "show",
        "replay",
        "drop",
    ]
    with pytest.raises(AssertionError, match="has no command 'frobnicate'"):
        resolve(Mention("test", "syncd frobnicate --now"))


def test_every_commands_help_shows_a_runnable_example() -> None:
    missing = []
    for path, cmd in all_commands():
        text = cmd.get_help(click.Context(cmd, info_name=path[-1]))
        examples = re.findall(r"Example: (syncd .+)", text)
        if not examples:
            missing.append(" ".join(path))
            continue
        for example in examples:  # the example itself names real commands and options
            for found in resolve(Mention(f"{' '.join(path)} --help", example.strip())):
                unknown = set(found.options) - option_names(found.command) - {"--help"}
                assert not unknown, f"{' '.join(path)} --help: `{example}` uses unknown {sorted(unknown)}"
    assert not missing, f"commands whose --help has no example: {missing}"
