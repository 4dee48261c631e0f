"""``python -m ursa.datasets [FOLDER]``: write the README's example files (default: ./examples)
and print their paths."""

import sys

from . import write_examples


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or any(a.startswith("-") for a in argv):
        print("usage: python -m ursa.datasets [FOLDER]  (default: examples)", file=sys.stderr)
        return 2
    for path in write_examples(argv[0] if argv else "examples").values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
