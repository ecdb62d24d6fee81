"""The owner's command line: thin commands over the rest of the package."""
