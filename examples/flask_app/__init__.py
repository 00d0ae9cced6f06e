"""sessionware on flask: see app.py."""
