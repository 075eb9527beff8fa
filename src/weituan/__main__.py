"""`python -m weituan`: the `weituan` command, for when the script is not on PATH."""

import sys

from weituan.cli import main

sys.exit(main())
