"""The one call pipeline: every way a tool gets called goes through `CallService`."""
