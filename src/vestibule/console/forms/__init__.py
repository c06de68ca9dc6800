"""Forms of the console pages, one module per area."""
