"""Lane device wire protocols: framing parsers and decoders with no I/O, no gRPC, no protobuf."""
