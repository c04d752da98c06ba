import sys

from convgraph.cli import main

sys.exit(main())
