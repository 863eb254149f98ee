"""The `stepline` command line."""
