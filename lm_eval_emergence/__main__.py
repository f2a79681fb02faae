"""`python -m lm_eval_emergence` (and `accelerate launch -m lm_eval_emergence`): the CLI."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
