"""Example Stepline apps; each directory is one (see its README.md)."""
