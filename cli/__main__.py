"""``python -m cli``: the same as the ``casebridge`` command."""

from cli import main

main()
