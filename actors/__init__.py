"""Ray deployments (one module each) and the plain modules that do the work."""
