"""``python -m ldl.course execute-all ...``: see :mod:`ldl.course.execute`."""

import sys

from ldl.course.execute import main

sys.exit(main())
