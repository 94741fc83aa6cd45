"""Allow `python -m lanesight ...` as a synonym of the `lanesight` command."""

import sys

from lanesight.common.cli import main

sys.exit(main())
