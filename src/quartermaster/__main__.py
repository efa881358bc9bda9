"""`python -m quartermaster` runs the `qm` command line."""

from quartermaster.cli import main

main()
