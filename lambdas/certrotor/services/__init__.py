"""Services: the logic between handlers and adapters."""
