"""``python -m casebridge.cli``: the same as the ``casebridge`` command."""

from casebridge.cli import main

main()
