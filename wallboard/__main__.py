"""`python -m wallboard` runs the CLI."""

from wallboard.cli import main

raise SystemExit(main())
