"""`python -m tinytrain`: the same as the `tinytrain` command."""

import sys

from tinytrain.cli import main

sys.exit(main())
