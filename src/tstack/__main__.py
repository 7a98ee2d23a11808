"""`python -m tstack` runs the CLI (for environments where the `tstack` script is not on the PATH)."""

from tstack.cli import main

main()
