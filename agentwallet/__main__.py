"""``python -m agentwallet`` runs the command line interface."""

from agentwallet.cli import main

if __name__ == "__main__":
    main()
