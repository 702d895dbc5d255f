"""The operator console's templates and the data its pages show (``app/api/routers/ui.py``)."""
