"""Reliability: acknowledged means durable, links heal, sequences and ids cannot be poisoned."""
