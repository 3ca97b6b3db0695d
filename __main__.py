"""``python -m robnas``: the same as the ``robnas`` command."""

from robnas.search.cli import main

raise SystemExit(main())
