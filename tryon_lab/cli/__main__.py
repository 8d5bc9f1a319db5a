"""``python -m tryon_lab.cli``: the ``tryon-lab`` command."""

import sys

from tryon_lab.cli import main

sys.exit(main())
