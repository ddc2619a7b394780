"""``python -m structgen.bench masks|testsuite|generate|report ...``"""

import sys

from structgen.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
