"""``python -m topcoins.emulator``."""

from topcoins.emulator.main import main

main()
