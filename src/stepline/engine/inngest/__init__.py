"""The Inngest SDK protocol: apps served over HTTP by the official SDKs (see docs/inngest.md)."""
