"""``python -m agents.cli``: the ``hebb-gym`` command."""

import sys

from agents.cli.main import main

sys.exit(main())
