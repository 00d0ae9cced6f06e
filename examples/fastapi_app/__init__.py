"""sessionware on fastapi: see app.py."""
