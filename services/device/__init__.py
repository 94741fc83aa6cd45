"""The lanesight device service."""

from lanesight.common.registry import ServiceSpec

SERVICE = ServiceSpec(
    name="device",
    grpc_service="lanesight.v1.DeviceService",
    config_model="lanesight.device.config:DeviceConfig",
    create_app="lanesight.device.app:create_app",
    default_address="127.0.0.1:50061",
    method_roles={
        "SubmitPosEvents": ("pos", "lane_agent"),
        "GetDeviceStatus": ("lane_agent", "pos", "attendant", "manager", "service"),
        "ExecuteLaneCommand": ("lane_agent", "attendant"),
        "WatchLaneCommands": ("lane_agent", "pos"),
        "WatchProduceSuggestions": ("lane_agent", "pos"),
        "GetAlertEvidence": ("attendant", "manager"),
    },
    retryable_methods=("GetDeviceStatus", "GetAlertEvidence"),
    cli=None,
)
