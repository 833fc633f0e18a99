"""Allow ``python -m pgsweep``."""

import sys

from pgsweep.cli import main

sys.exit(main())
