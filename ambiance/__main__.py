import sys

from ambiance.cli import main

sys.exit(main())
