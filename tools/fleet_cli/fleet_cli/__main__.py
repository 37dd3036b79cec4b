import sys

from fleet_cli.cli import main

sys.exit(main())
