"""Zero-cost proxies: one module each, higher = better."""
