"""Simulated lanes for tests, evaluation and the demo: shoppers, lane devices, cameras.

Nothing in the runtime services imports this package (a test checks the import graph).
"""
