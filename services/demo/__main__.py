"""`python -m services.demo` runs the demo with default options (what `make demo` calls)."""

import sys

from services.common.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))
