"""The bootstrap every lanesight service shares: config, logging, telemetry, gRPC server, CLI.

Import what you need from its modules (lanesight.common.config, .app, .server ...): this
package imports nothing, so a service package can declare itself with
lanesight.common.registry before the config, which is built from those declarations.
"""
