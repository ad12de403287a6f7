"""Depth exploration for notebooks: replay a recording, keep top-of-book series and sum windows,
and draw them with plotly.

Everything a notebook computes lives here, so notebooks only call. plotly is imported inside the
drawing functions: ``import polylab`` stays cheap and headless runs never load it.
Prices in the frames are Decimal-free floats *for plotting only*; the exact integers stay in the
books and windows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from polylab.analysis.replay import ReplayResult, iter_market_events, replay
from polylab.analysis.windows import SumMonitor, Window
from polylab.book.l2 import L2Book
from polylab.book.registry import BookRegistry
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.market import OutcomeGroup

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "DepthSession",
    "best_bid_ask_figure",
    "depth_ladder_figure",
    "load_session",
    "record_live",
    "sum_figure",
    "top_of_book_figure",
    "windows_frame",
]


class DepthSession:
    """A replayed recording: final books, outcome groups, sum series and windows."""

    def __init__(
        self,
        path: Path,
        result: ReplayResult,
        registry: BookRegistry,
        windows: list[Window],
        monitor: SumMonitor,
    ) -> None:
        self.path = path
        self.result = result
        self.registry = registry
        self.windows = windows
        self.monitor = monitor
        self.groups: list[OutcomeGroup] = registry.catalog.groups()

    def group(self, gid: str | None = None, kind: str = "binary") -> OutcomeGroup:
        """The group with id ``gid``, or the first of ``kind`` (binary / negrisk)."""
        for g in self.groups:
            if (gid is not None and g.id == gid) or (gid is None and g.kind == kind):
                return g
        raise KeyError(f"no outcome group {gid or kind!r} in {self.path}")

    def book(self, token_id: str) -> L2Book:
        """Final book of a token."""
        return self.registry.books[token_id]

    def tops(self, group: OutcomeGroup) -> pl.DataFrame:
        """Best bid and ask of each token of ``group`` after every event that touched them
        (a second pass over the recording)."""
        reg = BookRegistry()
        want = set(group.token_ids)
        rows: dict[str, list[Any]] = {"recv_ns": [], "token": [], "bid": [], "ask": []}
        for ns, ev in iter_market_events(self.path, reg.catalog):
            reg.apply(ev, ns)
            for tok in _touched(ev) & want:
                b = reg.books.get(tok)
                if b is not None:
                    rows["recv_ns"].append(ns)
                    rows["token"].append(tok)
                    rows["bid"].append(b.best_bid_micros() / 1e6)
                    rows["ask"].append(b.best_ask_micros() / 1e6)
        return pl.DataFrame(
            rows,
            schema={"recv_ns": pl.Int64, "token": pl.Utf8, "bid": pl.Float64, "ask": pl.Float64},
        ).with_columns(pl.from_epoch("recv_ns", time_unit="ns").alias("time"))

    def sums(self) -> pl.DataFrame:
        """Σ best ask and Σ best bid per group over time (one row per check)."""
        s = self.monitor.series
        return pl.DataFrame(
            {
                "recv_ns": [p.recv_ns for p in s],
                "group": [p.group for p in s],
                "ask_sum": [p.ask_sum / 1e6 for p in s],
                "bid_sum": [p.bid_sum / 1e6 for p in s],
            },
            schema={
                "recv_ns": pl.Int64,
                "group": pl.Utf8,
                "ask_sum": pl.Float64,
                "bid_sum": pl.Float64,
            },
        ).with_columns(pl.from_epoch("recv_ns", time_unit="ns").alias("time"))


def _touched(ev: object) -> set[str]:
    pcs = getattr(ev, "price_changes", None)
    if pcs:
        return {e.asset_id for e in pcs}
    aid = getattr(ev, "asset_id", None)
    return {aid} if isinstance(aid, str) else set()


def best_bid_ask_figure(session: DepthSession, group: OutcomeGroup) -> go.Figure:
    """Best bid and ask of every leg of ``group`` over time (step lines)."""
    import plotly.graph_objects as go

    df = session.tops(group)
    fig = go.Figure()
    for i, tok in enumerate(group.token_ids):
        d = df.filter(pl.col("token") == tok)
        name = f"leg {i + 1} ({tok[:8]}…)"
        fig.add_scatter(
            x=d["time"].to_list(), y=d["bid"].to_list(), name=f"{name} bid", line_shape="hv"
        )
        fig.add_scatter(
            x=d["time"].to_list(),
            y=d["ask"].to_list(),
            name=f"{name} ask",
            line_shape="hv",
            line_dash="dot",
        )
    fig.update_layout(title="best bid / ask per leg", yaxis_title="price", height=400)
    return fig


def record_live(
    seconds: float,
    *,
    venue: str = "sim",
    seed: int = 7,
    out: str | Path | None = None,
    top: int = 0,
) -> Path:
    """Record ``seconds`` of a venue's market channel (the recording format, catalog first) and
    return the file: ``venue`` "sim" starts the built-in simulator (seeded, nothing outside the
    machine); "polymarket" uses the production profile with the environment's overrides
    (``POLYMARKET_*_URL``). ``top``: only the N markets with the most 24 h volume (0: all).

    Runs its own event loop in a worker thread, so it works inside Jupyter's running loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from polylab.runner.recorder import RecordFilters, record_venue
    from polylab.sim.config import SimConfig
    from polylab.sim.server import running_sim
    from polylab.venue import resolve

    path = (
        Path(out)
        if out is not None
        else Path(tempfile.mkdtemp(prefix="polylab-")) / "live.jsonl.zst"
    )
    filters = RecordFilters(top=top) if top else RecordFilters()

    async def go() -> None:
        if venue == "sim":
            async with running_sim(SimConfig(seed=seed)) as h:
                await record_venue(
                    resolve("sim", sim_url=h.url), path, seconds=seconds, filters=filters
                )
        else:
            await record_venue(resolve(venue), path, seconds=seconds, filters=filters)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, go()).result()
    return path


def load_session(
    recording: str | Path | None = None,
    *,
    seed: int = 7,
    duration_s: float = 20.0,
    workdir: str | Path | None = None,
    source: str = "",
    venue: str = "sim",
) -> DepthSession:
    """Replay a recording with verification and series kept.

    ``source``: "synthetic" (a small seeded synthetic session written into ``workdir`` or a
    temp dir, so it needs nothing outside), "live" (``duration_s`` recorded now from ``venue``,
    the built-in simulator by default; see ``record_live``), or a recording's path. Left empty,
    ``recording`` is used, and with no recording the synthetic session."""
    d = Path(workdir) if workdir is not None else None
    if source == "live":
        out = (d / f"live-{seed}.jsonl.zst") if d is not None else None
        recording = record_live(duration_s, venue=venue, seed=seed, out=out)
    elif source and source != "synthetic":
        recording = source
    if recording is None:
        d = d if d is not None else Path(tempfile.mkdtemp(prefix="polylab-"))
        recording = d / f"synthetic-{seed}.jsonl.zst"
        write_synthetic(recording, SyntheticConfig(seed=seed, duration_s=duration_s))
    path = Path(recording)
    res, reg, windows, mon = replay(path, verify=True, keep_series=True)
    assert mon is not None
    return DepthSession(path, res, reg, windows, mon)


def windows_frame(windows: list[Window], *, side: str | None = "buy") -> pl.DataFrame:
    """Windows as a frame: start, duration (ms), best sum, edge, kind and label."""
    rows = [w for w in windows if side is None or w.side == side]
    return (
        pl.DataFrame(
            {
                "group": [w.group for w in rows],
                "kind": [w.kind for w in rows],
                "label": [w.label for w in rows],
                "side": [w.side for w in rows],
                "start": [w.start_ns for w in rows],
                "duration_ms": [w.duration_ns / 1e6 for w in rows],
                "best_sum": [w.best_sum / 1e6 for w in rows],
                "edge": [w.edge / 1e6 for w in rows],
                "updates": [w.updates for w in rows],
            },
            schema={
                "group": pl.Utf8,
                "kind": pl.Utf8,
                "label": pl.Utf8,
                "side": pl.Utf8,
                "start": pl.Int64,
                "duration_ms": pl.Float64,
                "best_sum": pl.Float64,
                "edge": pl.Float64,
                "updates": pl.Int64,
            },
        )
        .with_columns(pl.from_epoch("start", time_unit="ns"))
        .sort("start")
    )


def depth_ladder_figure(book: L2Book, levels: int = 15, title: str = "") -> go.Figure:
    """Bids and asks of one book as horizontal bars by price (shares), best levels first."""
    import plotly.graph_objects as go

    t = book.tick
    bids = book.bid_levels()[:levels]
    asks = book.ask_levels()[:levels]
    fig = go.Figure()
    fig.add_bar(
        y=[t.to_str(k) for k, _ in bids],
        x=[s / 1e6 for _, s in bids],
        orientation="h",
        name="bids",
        marker_color="seagreen",
    )
    fig.add_bar(
        y=[t.to_str(k) for k, _ in asks],
        x=[s / 1e6 for _, s in asks],
        orientation="h",
        name="asks",
        marker_color="indianred",
    )
    fig.update_layout(
        title=title or f"depth of {book.asset_id[:12]}…",
        xaxis_title="shares",
        yaxis_title="price",
        yaxis_type="category",
        barmode="overlay",
        height=500,
    )
    return fig


def top_of_book_figure(session: DepthSession, group: OutcomeGroup) -> go.Figure:
    """Σ best ask and Σ best bid of a group over time, with the $1 line."""
    import plotly.graph_objects as go

    df = session.sums().filter(pl.col("group") == group.id)
    fig = go.Figure()
    fig.add_scatter(
        x=df["time"].to_list(), y=df["ask_sum"].to_list(), name="Σ best ask", line_shape="hv"
    )
    fig.add_scatter(
        x=df["time"].to_list(), y=df["bid_sum"].to_list(), name="Σ best bid", line_shape="hv"
    )
    fig.add_hline(y=1.0, line_dash="dash", annotation_text="$1 payout")
    fig.update_layout(
        title=f"{group.kind} {group.label or group.id[:12]}: complete-set sums",
        yaxis_title="$ per set",
        height=400,
    )
    return fig


def sum_figure(session: DepthSession) -> go.Figure:
    """Window durations by kind: how long mispricings lasted (ms, log scale)."""
    import plotly.express as px

    df = windows_frame(session.windows, side=None).select("kind", "side", "duration_ms")
    if not df.height:
        df = pl.DataFrame({"kind": ["none"], "side": ["buy"], "duration_ms": [0.0]})
    fig: Any = px.strip(
        df,
        x="duration_ms",
        y="kind",
        color="side",
        log_x=bool(df.height),
        title="sum-window durations (ms)",
    )
    return fig
