"""Rewrite one benchmark's section of benchmarks/RESULTS.md.

RESULTS.md is a page to read, not a log: each benchmark script owns the sections delimited by
``<!-- begin NAME -->`` and ``<!-- end NAME -->`` and replaces them with its latest full run
(table, command, machine, date). A ``--quick`` run or a trial (any option that changes what is
measured) prints its figures and leaves the page alone unless asked with ``--record``. Git keeps
the history; why the defaults are what they are lives in ``docs/``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "The latest full run of each benchmark in `benchmarks/`. Every script rewrites its own section\n"
    "(between the `begin` / `end` markers) when it finishes a full run; `--quick` runs and trials\n"
    "leave this page alone unless given `--record`. Earlier figures: `git log -p "
    "benchmarks/RESULTS.md`.\n"
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def cpu_model() -> str:
    """The CPU's model name as lscpu reports it, else what platform knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def this_machine() -> str:
    """CPU model, logical cores, OS, Python and torch: the part every section shares."""
    try:
        import torch

        torch_version = f", torch {torch.__version__}"
    except ImportError:
        torch_version = ""
    return (f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}{torch_version}")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def add_write_options(parser) -> None:
    """``--record`` (alias ``--write``) and ``--no-write``, stored in ``args.write``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--record", "--write", dest="write", action="store_true", default=None,
                       help="rewrite this benchmark's section of benchmarks/RESULTS.md even for a "
                            "--quick or trial run (a full run rewrites it by default)")
    group.add_argument("--no-write", dest="write", action="store_false",
                       help="leave benchmarks/RESULTS.md alone")


def trial_options(parser, args, ignore=()) -> list[str]:
    """The options of ``args`` (as parsed, before any defaults are filled in) whose values
    differ from the parser's defaults, leaving out ``ignore`` (destinations) and ``write``.
    An empty list means a full run."""
    skip = {"help", "write", *ignore}
    found = []
    for action in parser._actions:
        if not action.option_strings or action.dest in skip or action.help == argparse.SUPPRESS:
            continue
        if getattr(args, action.dest, None) != parser.get_default(action.dest):
            found.append(action.option_strings[-1] if action.option_strings[-1].startswith("--")
                         else action.option_strings[0])
    return found


def should_write(write, trial) -> bool:
    """``write`` is ``args.write`` (None: the default); ``trial`` what ``trial_options`` found.
    Says on stdout what happened to RESULTS.md when it is left alone."""
    if write is None:
        write = not trial
        if trial:
            print(f"\n{RESULTS.name} not changed: a trial run ({', '.join(trial)}); "
                  "--record writes its section anyway.")
    return bool(write)


def section(name: str, body: str, command: str, *, title: str | None = None,
            machine: str | None = None, date: str | None = None) -> str:
    """The text ``write_section`` puts between the markers."""
    lines = [f"<!-- begin {name} -->", f"## {title or name}", "",
             f"- Command: `{command.strip()}`",
             f"- Machine: {machine or this_machine()}",
             f"- Date: {date or now()}", "", body.strip(), "", f"<!-- end {name} -->"]
    return "\n".join(lines)


def write_section(name: str, body: str, command: str, *, title: str | None = None,
                  machine: str | None = None, date: str | None = None,
                  path: Path = RESULTS) -> Path:
    """Replace the section ``name`` of ``path`` (RESULTS.md) with ``body`` (markdown), headed by
    ``title``, the command, the machine (this one unless given) and the date (now unless given).
    A section not yet on the page is added at its end. Returns ``path``."""
    if not _NAME.match(name):
        raise ValueError(f"section name {name!r}: use lower-case letters, digits, '.', '_', '-'")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if not text.strip():
        text = HEADER
    new = section(name, body, command, title=title, machine=machine, date=date)
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->",
                         re.S)
    found = pattern.search(text) is not None
    if found:
        text = pattern.sub(lambda _: new, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    print(f"{'Rewrote' if found else 'Added'} the section {name!r} of {path}")
    return path
