"""`make demo`: four real services, simulated lanes, live alerts, a closing summary."""
