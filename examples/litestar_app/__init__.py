"""sessionware on litestar: see app.py."""
