"""sessionware on starlette: see app.py."""
