"""``python -m genai_apm.cli``: the `genai-apm` command."""

import sys

from genai_apm.cli import main

sys.exit(main())
