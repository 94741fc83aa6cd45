"""The lanesight reporting service."""

from lanesight.common.registry import ServiceSpec

SERVICE = ServiceSpec(
    name="reporting",
    grpc_service="lanesight.v1.ReportingService",
    config_model="lanesight.reporting.config:ReportingConfig",
    create_app="lanesight.reporting.app:create_app",
    default_address="127.0.0.1:50064",
    method_roles={
        "IngestRecords": ("service",),
        "ListAlerts": ("manager",),
        "GetShrinkReport": ("manager",),
        "GetAlertQualityReport": ("manager",),
        "GetLaneHealthReport": ("manager",),
        "GetPosExceptionReport": ("manager",),
        "ExportReport": ("manager",),
        "ImportPosLog": ("manager", "service"),
    },
    # Every reporting RPC is idempotent (ingest by event id, reports are reads).
    retryable_methods=("*",),
    cli="lanesight.reporting.cli",
)
