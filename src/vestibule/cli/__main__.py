import sys

from vestibule.cli import main

sys.exit(main())
