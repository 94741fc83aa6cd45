"""The demo's live terminal view: lanes, their transactions, alerts as they come and go."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text


@dataclass
class LaneView:
    """What the screen shows for one lane."""

    lane_id: str
    transaction_id: str = ""
    items: int = 0
    total_minor: int = 0
    currency: str = "USD"
    status: str = "idle"
    shopper: str = ""
    prompt: str = ""
    transactions_done: int = 0
    #: The produce scale's PLU suggestions, as the customer display shows them.
    suggestions: str = ""


@dataclass
class AlertLine:
    """One alert in the feed."""

    at: float
    lane_id: str
    kind: str
    severity: str
    reason: str
    amount_minor: int
    currency: str
    state: str = "open"
    disposition: str = ""


@dataclass
class DemoView:
    """Everything the live screen renders; the demo updates it, the screen reads it."""

    title: str
    duration_s: float
    started_at: float = field(default_factory=time.monotonic)
    lanes: dict[str, LaneView] = field(default_factory=dict)
    alerts: deque[AlertLine] = field(default_factory=lambda: deque(maxlen=12))
    alerts_by_id: dict[str, AlertLine] = field(default_factory=dict)
    notes: deque[str] = field(default_factory=lambda: deque(maxlen=4))

    def add_alert(self, alert_id: str, line: AlertLine) -> None:
        """Show a newly raised alert."""
        self.alerts_by_id[alert_id] = line
        self.alerts.appendleft(line)

    def render(self) -> Group:
        """Build the renderable for one refresh."""
        elapsed = time.monotonic() - self.started_at
        lanes = Table(expand=True, title="Lanes", title_justify="left")
        for column in ("lane", "shopper", "transaction", "items", "total", "status"):
            lanes.add_column(column, no_wrap=True)
        lanes.add_column("prompt", ratio=1, overflow="fold")
        lanes.add_column("scale suggestions", ratio=1, overflow="fold")
        for lane in self.lanes.values():
            status_style = {"paused": "bold red", "paying": "cyan", "scanning": "green"}.get(
                lane.status, "dim"
            )
            lanes.add_row(
                lane.lane_id,
                lane.shopper,
                lane.transaction_id[-8:],
                str(lane.items),
                _money(lane.total_minor, lane.currency),
                Text(lane.status, style=status_style),
                Text(lane.prompt, style="yellow"),
                Text(lane.suggestions, style="magenta"),
            )
        feed = Table(expand=True, title="Alerts", title_justify="left")
        for column in ("time", "lane", "exception", "sev", "at risk", "state"):
            feed.add_column(column, no_wrap=True)
        feed.add_column("reason", ratio=1, overflow="fold")
        for alert in self.alerts:
            state = alert.state + (f" ({alert.disposition})" if alert.disposition else "")
            feed.add_row(
                f"{alert.at:5.1f}s",
                alert.lane_id,
                alert.kind,
                alert.severity,
                _money(alert.amount_minor, alert.currency),
                Text(state, style="green" if alert.state == "resolved" else "bold yellow"),
                alert.reason,
            )
        progress = ProgressBar(total=self.duration_s, completed=min(elapsed, self.duration_s))
        footer = Text(
            f"{elapsed:5.1f}s of {self.duration_s:.0f}s   alerts: {len(self.alerts_by_id)}   "
            + "   ".join(self.notes),
            style="dim",
        )
        return Group(Panel(Text(self.title, style="bold")), lanes, feed, progress, footer)


def _money(amount_minor: int, currency: str) -> str:
    sign = "-" if amount_minor < 0 else ""
    amount = abs(amount_minor)
    return f"{sign}{amount // 100}.{amount % 100:02d} {currency}"


def live_screen(view: DemoView, enabled: bool) -> Live | None:
    """A rich Live bound to the view, or None in plain mode (CI, pipes)."""
    if not enabled:
        return None
    return Live(get_renderable=view.render, refresh_per_second=4, transient=False)
