"""Small helpers every layer uses: atomic file writes, text/markdown tables, torch thread limits."""
