"""The base-station sync on the official Inngest Python SDK, run by Stepline."""
