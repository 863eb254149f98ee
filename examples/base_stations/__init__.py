"""Base-station sync: a realistic Stepline example (see README.md)."""
