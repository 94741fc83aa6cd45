"""The lanesight vision service."""

from lanesight.common.registry import ServiceSpec

SERVICE = ServiceSpec(
    name="vision",
    grpc_service="lanesight.v1.VisionService",
    config_model="lanesight.vision.config:VisionConfig",
    create_app="lanesight.vision.app:create_app",
    default_address="127.0.0.1:50062",
    method_roles={
        "Analyze": ("lane_agent",),
        "ClassifyImages": ("lane_agent", "manager", "service"),
        "EnrolProduct": ("manager", "service"),
        "GetVisionStats": ("lane_agent", "manager", "service"),
    },
    retryable_methods=("GetVisionStats",),
    cli="lanesight.vision.cli",
)
