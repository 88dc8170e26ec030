"""``python -m ldl.site``: see :mod:`ldl.site.build`."""

import sys

from ldl.site.build import main

sys.exit(main())
