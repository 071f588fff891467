"""``python -m dialerd.cli`` still runs the command, as it did when the CLI was
one module."""

from dialerd.cli import main

raise SystemExit(main())
