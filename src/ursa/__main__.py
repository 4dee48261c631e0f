"""``python -m ursa``: the ``ursa`` command without the console script (e.g. in a venv not on PATH)."""

from .cli import main

raise SystemExit(main())
