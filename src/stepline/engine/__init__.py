"""The engine: executor, worker, scheduler, routing and operations. No HTTP, no SQL."""
