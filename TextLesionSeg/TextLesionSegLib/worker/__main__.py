"""``python -m TextLesionSegLib.worker``: the persistent worker process (see ``server``)."""

import sys

from .server import main

sys.exit(main())
