"""``python -m policyc.cli``: the same as the ``policyc`` command."""

import sys

from policyc.cli import main

sys.exit(main())
