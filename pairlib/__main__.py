import sys

from pairlib.study.run import main

sys.exit(main())
