"""``python -m inpaint_kit`` is the same as the ``inpaint-kit`` command."""

import sys

from .cli import main

sys.exit(main())
