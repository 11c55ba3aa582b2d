"""farside on the PC: links, virtual board, flashing, relay emulator, ground station, CLI."""
