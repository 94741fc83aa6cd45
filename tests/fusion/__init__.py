"""Tests of the fusion service: engine rules, simulator, gRPC service, forwarder, CLI."""
