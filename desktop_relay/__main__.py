"""`python -m desktop_relay`."""

import sys

from .cli import main

sys.exit(main())
