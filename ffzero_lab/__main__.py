"""``python -m ffzero_lab`` runs the CLI."""

from ffzero_lab.cli.app import main

main()
