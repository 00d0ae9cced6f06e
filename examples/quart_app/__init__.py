"""sessionware on quart: see app.py."""
