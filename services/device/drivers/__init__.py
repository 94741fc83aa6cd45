"""Asyncio drivers for lane peripherals: transports, reconnect loops, health."""
