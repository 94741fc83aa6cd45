"""lanesight services: device, vision, fusion and reporting, plus their common bootstrap."""
