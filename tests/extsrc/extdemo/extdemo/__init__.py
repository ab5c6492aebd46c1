"""C extensions for the bridge's tests; only the master has them."""
