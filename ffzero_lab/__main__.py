"""``python -m ffzero_lab`` runs the CLI."""

from .cli import main

main()
