"""The HTTP layer: the FastAPI app (``app.create_app``), its routes, its middleware and how
errors are rendered. It knows requests and responses; ``server.serving`` does the work."""
