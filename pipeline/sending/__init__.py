"""Campaign runner, sender processes, the worker and the transports."""
