"""`python -m lanesight.demo` runs the demo with default options (what `make demo` calls)."""

import sys

from lanesight.common.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))
