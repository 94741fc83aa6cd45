"""What the report and import-poslog commands print, for local and remote runs alike."""

from __future__ import annotations

# CLI report name -> export kind.
REPORT_KINDS = {
    "shrink": "shrink",
    "alert-quality": "alert_quality",
    "lane-health": "lane_health",
    "pos-exceptions": "pos_exceptions",
    "alerts": "alerts",
    "stores": "store_comparison",
    "html": "all",
}


def render_text(bundle, kind: str, keyed_only: bool = False) -> str:
    """A report bundle as terminal tables."""
    from lanesight.reporting import tables

    if kind == "shrink":
        return tables.to_text(tables.shrink_table(bundle.shrink, bundle.group_by))
    if kind == "alert_quality":
        text = tables.to_text(tables.quality_table(bundle.quality))
        return text + f"\n{bundle.transactions} transactions in range\n"
    if kind == "lane_health":
        keyed = tables.to_text(tables.keyed_table(bundle.keyed))
        if keyed_only:
            return keyed
        return tables.to_text(tables.lane_table(bundle.lanes)) + "\n" + keyed
    if kind == "pos_exceptions":
        return tables.to_text(tables.pos_table(bundle.pos))
    if kind == "store_comparison":
        return tables.to_text(tables.stores_table(bundle.stores))
    return tables.to_text(tables.alerts_table(bundle.alerts))


def describe_import(name: str, result) -> str:
    """One line about an import."""
    skipped = ", ".join(f"{k} x{v}" for k, v in sorted(result.skipped_elements.items()))
    return (
        f"{name}: {result.transactions} transactions imported, {result.duplicates} already "
        f"imported; unknown elements skipped: {skipped or 'none'}"
    )
