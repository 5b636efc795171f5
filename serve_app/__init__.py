"""HTTP edge and wiring: the FastAPI ingress, API schemas, settings, app builder, CLI."""
