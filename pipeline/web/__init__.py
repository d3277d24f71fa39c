"""The subscriber-facing web app; :func:`pipeline.web.app.create_app` builds it."""
