"""The lane agent's gRPC links to its peers: fusion (events, commands) and vision (frames)."""
