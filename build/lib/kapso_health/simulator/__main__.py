import sys

from kapso_health.simulator.main import main

sys.exit(main())
