"""Command-line subcommands that register themselves on the `tstack` Typer app."""
