"""``python -m mlm``: the ``mlm`` command (:mod:`mlm.cli`).

With no arguments it fits the README's example, ``mathach ~ ses + (ses | school)`` on the
bundled High School and Beyond data; ``python -m mlm --help`` lists the commands.
"""

import sys

from mlm.cli import main

if __name__ == "__main__":
    sys.exit(main())
