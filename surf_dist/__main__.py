"""``python -m surf_dist`` (also what torchrun runs: ``torchrun ... -m surf_dist train --backend torch``)."""

import sys

from .cli import main

sys.exit(main())
