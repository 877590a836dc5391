"""`python -m sgm.pool`: the same as `sgm pool` (see sgm.pool.cli)."""
import sys

from sgm.pool.cli import main

sys.exit(main())
