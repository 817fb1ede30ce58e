"""``python -m memtree``: the command-line interface."""

from memtree.cli import main

raise SystemExit(main())
