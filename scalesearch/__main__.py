import sys

from scalesearch.cli import main

sys.exit(main())
