"""A newcomer's first run: the README's two commands on a fresh clone, timed.

Clones the repository's committed HEAD into a temporary folder and runs ``make demo`` then
``make test`` there (the first creates the virtual environment), recording each command's wall
time and the CPU time of everything it ran. With ``--load N``, N busy processes (pure Python
loops, one per core) run alongside: the machine another user would have while compiling or
training, to see what a default fit costs when the cores are shared.

Usage::

    python benchmarks/first_run.py              # quiet machine; rewrites its RESULTS.md section
    python benchmarks/first_run.py --load 2     # both cores kept busy by two other processes
    python benchmarks/first_run.py --only demo  # a trial: one command, writes nothing

The two runs rewrite separate sections (``first_run`` and ``first_run-loaded``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

COMMANDS = {"demo": ["make", "demo"], "test": ["make", "test"]}


def _spin(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], cwd: Path, log: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the command and its children, exit code)."""
    cpu, started = _children_cpu(), time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - started, _children_cpu() - cpu, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=0,
                        help="busy processes running alongside (default 0: a quiet machine)")
    parser.add_argument("--only", choices=tuple(COMMANDS), default=None,
                        help="run one command (a trial)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its logs")
    _results.add_write_options(parser)
    args = parser.parse_args()
    trial = _results.trial_options(parser, args, ignore=("load", "keep"))

    folder = Path(tempfile.mkdtemp(prefix="ursa-first-run-"))
    clone = folder / ROOT.name
    subprocess.check_call(["git", "clone", "--quiet", str(ROOT), str(clone)])
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (folder / "shared").exists():
        (folder / "shared").symlink_to(shared)  # the benchmark data the tests read, if present
    head = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=clone, text=True)

    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(args.load)]
    for p in spinners:
        p.start()
    rows = []
    try:
        for name, command in COMMANDS.items():
            if args.only and name != args.only:
                continue
            wall, cpu, code = run(command, clone, folder / f"{name}.log")
            rows.append((" ".join(command), wall, cpu, code))
            print(f"{' '.join(command)}: {wall:.0f} s wall, {cpu:.0f} s CPU, exit {code}",
                  flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=10)
    demo_log = folder / "demo.log"
    total_line = next((line.strip() for line in demo_log.read_text().splitlines()[::-1]
                       if line.startswith("demo wall time")), None) if demo_log.exists() else None

    machine = (f"{args.load} busy process{'es' if args.load != 1 else ''} alongside"
               if args.load else "quiet machine")
    lines = [f"Fresh clone of commit {head.strip()} ({machine}); the first command creates "
             "`.venv` and installs `requirements.lock` into it.", "",
             "| command | wall time | CPU time | exit code |", "|---|---:|---:|---:|"]
    lines += [f"| `{c}` | {w:.0f} s | {u:.0f} s | {code} |" for c, w, u, code in rows]
    if total_line:
        lines += ["", "The demo's own measurement (the last row of its table): `"
                  + " | ".join(cell.strip() for cell in total_line.split("|")) + "`"]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.keep:
        subprocess.call(["rm", "-rf", str(folder)])
    else:
        print(f"kept {folder}")
    if _results.should_write(args.write, trial):
        name = "first_run" + ("-loaded" if args.load else "")
        title = ("A fresh clone's first run" + (f", with {args.load} busy processes alongside"
                                                 if args.load else "")
                 + " — `benchmarks/first_run.py`")
        _results.write_section(
            name, report,
            f"python benchmarks/first_run.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}",
            machine=_results.this_machine(), title=title)


if __name__ == "__main__":
    main()
