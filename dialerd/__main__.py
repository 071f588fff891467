"""``python -m dialerd`` is the ``dialerd`` command."""

from dialerd.cli import main

raise SystemExit(main())
