"""Allow `python -m services ...` as a synonym of the `lanesight` command."""

import sys

from services.common.cli import main

sys.exit(main())
