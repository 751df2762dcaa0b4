"""``python -m genmodels``: the command line (``genmodels.cli.main``)."""

import sys

from genmodels.cli.main import main

sys.exit(main())
