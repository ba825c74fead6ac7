"""``python -m kit`` runs the same CLI as the ``kit`` console script."""

import sys

from kit.cli import main

sys.exit(main())
