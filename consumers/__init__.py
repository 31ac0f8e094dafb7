"""Long-running consumers: the bank simulator, activation results and branch decisions."""
