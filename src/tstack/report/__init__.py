"""Rendering: JSON documents, rich tables, matplotlib plots. Only this layer and the CLI import rich/matplotlib."""
