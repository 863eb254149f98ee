"""The ASGI server: event intake, REST API and dashboard."""
