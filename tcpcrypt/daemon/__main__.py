"""`python -m tcpcrypt.daemon`: the same as the `tcpcryptd` command."""

import sys

from tcpcrypt.daemon.main import main

sys.exit(main())
