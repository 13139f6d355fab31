import sys

from voicecloning.cli import main

sys.exit(main())
