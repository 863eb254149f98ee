"""What user code touches: App, triggers, Context and the step API."""
