"""Every ``python benchmarks/...`` and ``graphkit ...`` command written in the README,
benchmarks/README.md, CONTRIBUTING.md and docs/methods/ parses with that script's own arguments:
a renamed flag, a dropped choice or a ``--merge`` of a file that is not committed fails here,
not in a reader's shell. Placeholders (``OUT``, ``A``) parse as any value; nothing runs past
parsing."""

import argparse
import inspect
import re
import shlex
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", ROOT / "CONTRIBUTING.md",
        *sorted((ROOT / "docs" / "methods").glob("*.md"))]
COMMAND = re.compile(r"python3? (benchmarks/[\w/]+\.py)\b|^\s*(graphkit) (?=[a-z])")
# where a shell command line ends
SHELL_ENDS = {"|", "||", "&&", ";", "&", ">", ">>", "2>&1", "2>"}


def _fenced_lines(text: str) -> list[str]:
    """The lines of the shell (or unlabelled) fenced blocks, continuation lines joined, comments
    dropped and a block's ``S="python ..."`` variables expanded in its later ``$S`` lines."""
    lines, inside, shell, names = [], False, False, {}
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("```"):
            inside, shell, names = not inside, line.strip()[3:] in ("", "bash", "sh"), {}
            continue
        if inside and shell:
            line = re.split(r"\s#", line, maxsplit=1)[0]
            assigned = re.match(r'(\w+)="([^"]*)"\s*$', line)
            if assigned:
                names[assigned.group(1)] = assigned.group(2)
            for name, value in names.items():
                line = line.replace(f"${name}", value)
            lines.append(line)
    return lines


def _inline_spans(text: str) -> list[str]:
    """Inline code spans outside fenced blocks (they may wrap over lines in prose)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]


def _expand_braces(token: str) -> list[str]:
    """``a_{x,y}.json`` -> ``a_x.json a_y.json`` (the shell's brace expansion, one level)."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", token)
    if m is None:
        return [token]
    return [out for part in m.group(1).split(",")
            for out in _expand_braces(token[:m.start()] + part + token[m.end():])]


def _commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for chunk in [*_fenced_lines(text), *_inline_spans(text)]:
            for m in COMMAND.finditer(chunk):
                rest = chunk[m.end():]
                quote = chunk[m.start() - 1:m.start()]
                if quote in ("'", '"'):  # S="python benchmarks/x.py --flag": the quoted part
                    rest = rest.split(quote, 1)[0]
                tokens = shlex.split(rest, comments=True)
                argv = []
                for token in tokens:
                    if token in SHELL_ENDS or token.startswith(">"):
                        break
                    argv += _expand_braces(token)
                found.append((doc.relative_to(ROOT).as_posix(), m.group(1) or m.group(2), argv))
    return found


COMMANDS = _commands()


class Parsed(Exception):
    """Raised in place of returning the parsed namespace: the script stops before any work."""


def test_the_documents_hold_many_commands():
    assert len(COMMANDS) >= 80
    assert {script for _, script, _ in COMMANDS} >= {"benchmarks/forward_learning.py",
                                                      "benchmarks/lpgnas.py",
                                                      "benchmarks/ogb/node_property.py",
                                                      "graphkit"}
    assert {argv[0] for _, script, argv in COMMANDS if script == "graphkit"} >= {
        "demo", "embed", "graphlets", "datasets"}


def _main(import_script, script: str):
    if script == "graphkit":
        from graphkit.cli import main

        return main
    return import_script(script[len("benchmarks/"):-len(".py")]).main


@pytest.mark.parametrize(("doc", "script", "argv"), COMMANDS,
                         ids=[f"{doc}:{script.removeprefix('benchmarks/')}:{i}"
                              for i, (doc, script, _) in enumerate(COMMANDS)])
def test_documented_command_parses(import_script, monkeypatch, doc, script, argv):
    main = _main(import_script, script)
    # commands written for a GPU parse here as well (the device check asks torch.cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    parse = argparse.ArgumentParser.parse_args

    def stop_after_parsing(self, args=None, namespace=None):
        raise Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop_after_parsing)
    monkeypatch.chdir(ROOT)  # the documents' paths are relative to the repository
    if inspect.signature(main).parameters:
        call = lambda: main(argv)  # noqa: E731
    else:
        monkeypatch.setattr(sys, "argv", [script, *argv])
        call = main
    try:
        call()
    except Parsed:
        return
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{_shown(script)} {shlex.join(argv)}` does not parse "
                    f"(exit {exc.code}; see the usage message above)")
    pytest.fail(f"{doc}: `{_shown(script)} {shlex.join(argv)}` ran without parsing arguments")


def _shown(script: str) -> str:
    return script if script == "graphkit" else f"python {script}"
