"""The lanesight fusion service."""

from lanesight.common.registry import ServiceSpec

SERVICE = ServiceSpec(
    name="fusion",
    grpc_service="lanesight.v1.FusionService",
    config_model="lanesight.fusion.config:FusionConfig",
    create_app="lanesight.fusion.app:create_app",
    default_address="127.0.0.1:50063",
    method_roles={
        "Ingest": ("lane_agent",),
        "WatchAlerts": ("lane_agent", "attendant", "manager"),
        "AcknowledgeAlert": ("attendant", "manager"),
        "ResolveAlert": ("attendant", "manager"),
        "GetLaneState": ("lane_agent", "attendant", "manager"),
        "AcknowledgeLaneCommand": ("lane_agent",),
        "UpsertCatalogItems": ("pos", "service"),
    },
    retryable_methods=("GetLaneState", "UpsertCatalogItems"),
    cli="lanesight.fusion.cli",
)
