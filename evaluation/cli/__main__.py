"""``python -m evaluation.cli``: the ``noisepref`` command line."""

import sys

from evaluation.cli import main

sys.exit(main())
