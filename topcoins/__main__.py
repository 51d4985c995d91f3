"""``python -m topcoins`` is the ``topcoins`` command."""

from topcoins.cli import main

main()
