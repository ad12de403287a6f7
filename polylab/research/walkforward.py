"""Walk-forward validation: time slices of a recording, train/test folds, tuning on train and
evaluation on test (in-sample against out-of-sample), and the held-out guard.

**Windows.** Walk-forward runs over an ordered list of recordings, the *windows* (separate
recordings in time order, or ``slice_recording``'s slices of one). ``slice_recording`` cuts at
event time (each record's ``recv_ns``, never going back, as the replay clock reads it) into
``n`` spans of equal length; every slice is a self-contained recording: it starts with the
state the books were in at its start (the catalog the recording stated so far on the ``meta``
channel, a ``book`` snapshot of every token, the books the feed had stopped trusting as
``feed`` notes, the last trade price of each token and the markets already resolved), then
the original records of its span, verbatim. Replaying slice k therefore ends with the same
books as replaying the whole recording up to the end of slice k (tested). Not carried over:
scoreboards (``sports`` records stay in their slice) and each book's age (a carried book is as
fresh as the slice's start).

**Folds.** With W windows and F folds, fold k tests on window W − F + k and trains on the
windows before it: all of them (``anchored``) or the last W − F (``rolling``, a fixed-size
train window). Each fold tunes on its train windows with the sweep API (``grid_sweep`` over
grid points, or a seeded ``optuna_sweep`` over a space), picks the config with the highest
``objective`` (ties: the first in sweep order) and runs it again over train (in-sample, IS) and
test (out-of-sample, OOS).

**Degradation.** Windows differ in length, so PnL is compared per hour of data: a window's
hours are its event-time span (last − first ``recv_ns``). ``pnl_per_hour_micros`` = PnL (micros)
× 3.6e12 // span (ns), floored; degradation = 1 − OOS PnL per hour / IS PnL per hour (0: the
test earned at the training rate; 1: nothing; > 1: lost money); ``None`` when the in-sample
PnL per hour is not positive (no rate to degrade). The aggregate adds every fold's IS (and OOS)
PnL and hours before dividing; its blocks are ``sweep.combine`` of the folds' runs in fold
order (OOS: the test windows chained, each with its fold's config; IS: the train runs of every
fold one after the other, so an anchored train window counts once per fold that used it).

**Held-out data.** Recordings named as held-out are never given to a sweep: ``check_held_out``
refuses inputs that are a held-out file by path or by content (SHA-256). The held-out set is
replayed once, at the end, with the final candidate (the config tuned on every window).

Money in integer micros throughout; rates are ratios (floats).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import polars as pl

from polylab.backtest import FEED_CHANNEL, FeedNote
from polylab.book.registry import BookRegistry
from polylab.config import PolylabConfig, config_id
from polylab.errors import InputError
from polylab.feed.decode import market_decoder
from polylab.feed.recording import RecordingReader, RecordingWriter, decode_meta
from polylab.feed.wire import Book, Level, MarketResolved, NewMarket
from polylab.market import Market
from polylab.money import size_to_str
from polylab.research.sweep import RunStats, combine
from polylab.research.sweep_run import OBJECTIVES, grid_sweep, optuna_sweep, run_stats
from polylab.research.sweep_space import make_config
from polylab.store.run_folder import file_sha256

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "HOUR_NS",
    "Fold",
    "FoldResult",
    "HeldOutError",
    "WalkForwardError",
    "WalkForwardReport",
    "check_held_out",
    "degradation",
    "fold_figure",
    "make_folds",
    "pnl_per_hour",
    "recording_span",
    "slice_bounds",
    "slice_recording",
    "walk_forward",
]

HOUR_NS = 3_600_000_000_000
"""Nanoseconds in an hour: the unit of data PnL rates are given per."""

Mode = Literal["anchored", "rolling"]
Phase = Callable[[str], None]
"""Told what walk-forward is about to do (``"fold 0: tune on …"``, ``"held_out: …"``)."""


class WalkForwardError(InputError):
    """Bad walk-forward input (slices, folds, mode, objective); the message names the value."""


class HeldOutError(WalkForwardError):
    """A held-out recording (by path or by content) is among the inputs of a sweep."""


# -- slices ----------------------------------------------------------------------------------


def recording_span(path: str | Path) -> tuple[int, int]:
    """First and last event time of a recording (``recv_ns``, never going back), ns."""
    first = last = 0
    seen = False
    for rec in RecordingReader(path):
        if not seen:
            first = last = rec.recv_ns
            seen = True
        elif rec.recv_ns > last:
            last = rec.recv_ns
    return first, last


def slice_bounds(path: str | Path, n: int) -> list[int]:
    """The ``n + 1`` event times (ns) that cut ``path`` into ``n`` equal spans; slice k holds
    the records whose event time t has ``bounds[k] <= t < bounds[k + 1]`` (the last slice
    includes the last record)."""
    if n < 1:
        raise WalkForwardError(f"slices: n must be ≥ 1 (got {n})")
    first, last = recording_span(path)
    if n > 1 and last - first < n:
        raise WalkForwardError(f"{path}: {last - first} ns of data cannot be cut into {n} slices")
    inner = [first + (last - first) * k // n for k in range(1, n)]
    return [first, *inner, last + 1]


def _slice_name(path: Path, k: int, n: int) -> str:
    name = path.name
    for suffix in (".jsonl.zst", ".jsonl", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{name}.slice{k + 1:02d}of{n:02d}.jsonl.zst"


def _write_state(
    w: RecordingWriter, reg: BookRegistry, known: dict[str, Market], at_ns: int
) -> None:
    """The registry's state as records stamped ``at_ns``: the catalog the recording stated
    (``known``: its ``meta`` records and ``new_market`` events; markets only inferred from
    bare frames are not written, so a metadata file given to the replay keeps its say),
    books, distrust, trades, resolutions (see the module doc)."""
    if known:
        w.write_meta(list(known.values()), at_ns)
    enc = msgspec.json.Encoder()
    for b in reg.books.values():
        t = b.tick
        snap = Book(
            asset_id=b.asset_id,
            market=b.market,
            # best last, as the venue orders a snapshot
            bids=[Level(t.to_str(k), size_to_str(s)) for k, s in reversed(b.bid_levels())],
            asks=[Level(t.to_str(k), size_to_str(s)) for k, s in reversed(b.ask_levels())],
            timestamp=str(b.exchange_ms),
            hash=b.hash,
            tick_size=t.text,
        )
        w.write("market", enc.encode(snap).decode(), at_ns)
    for b in reg.books.values():
        if b.needs_snapshot:
            note = FeedNote(asset_id=b.asset_id, reason="slice start", needs_snapshot=True)
            w.write(FEED_CHANNEL, enc.encode(note).decode(), at_ns)
    for ltp in reg.last_trade.values():
        w.write("market", enc.encode(ltp).decode(), at_ns)
    for market, winner in reg.resolved.items():
        ev = MarketResolved(market=market, winning_asset_id=winner)
        w.write("market", enc.encode(ev).decode(), at_ns)


def slice_recording(path: str | Path, n: int, out_dir: str | Path) -> list[Path]:
    """Cut ``path`` into ``n`` contiguous time slices written to ``out_dir`` as
    ``<name>.sliceKKofNN.jsonl.zst``, each a self-contained recording (module doc)."""
    src = Path(path)
    bounds = slice_bounds(src, n)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / _slice_name(src, k, n) for k in range(n)]
    reg = BookRegistry()
    known: dict[str, Market] = {}
    handlers = reg.handlers
    dec = market_decoder()
    k = 0
    w = RecordingWriter(paths[0])
    now = 0
    try:
        for rec in RecordingReader(src):
            now = max(now, rec.recv_ns)
            while k + 1 < n and now >= bounds[k + 1]:
                w.close()
                k += 1
                w = RecordingWriter(paths[k])
                _write_state(w, reg, known, now)
            w.write(rec.channel, rec.payload, rec.recv_ns)
            _apply(reg, known, handlers, dec, rec.channel, rec.payload, now)
    finally:
        w.close()
    for j in range(k + 1, n):  # nothing fell in the last spans (cannot happen: bounds cover)
        with RecordingWriter(paths[j]) as empty:
            _write_state(empty, reg, known, now)
    return paths


def _apply(
    reg: BookRegistry,
    known: dict[str, Market],
    handlers: Any,
    dec: Any,
    channel: str,
    payload: str,
    t: int,
) -> None:
    """One record into the registry, as a backtest applies it (a bad frame costs itself);
    markets the recording states go into ``known`` too."""
    if channel == "market":
        try:
            for ev in dec.decode(payload):
                handlers[type(ev)](ev, t)
                if type(ev) is NewMarket:
                    m = reg.catalog.markets.get(ev.market or ev.condition_id)
                    if m is not None:
                        known[m.condition_id] = m
        except Exception:  # as in a backtest: a value that breaks an invariant costs its frame
            reg.stats.malformed += 1
    elif channel == "meta":
        try:
            for m in decode_meta(payload):
                reg.catalog.add(m)
                known[m.condition_id] = m
        except (msgspec.DecodeError, ValueError):
            reg.stats.malformed += 1
    elif channel == FEED_CHANNEL:
        try:
            note = msgspec.json.decode(payload, type=FeedNote)
        except msgspec.DecodeError:
            return
        book = reg.books.get(note.asset_id)
        if book is not None and note.needs_snapshot:
            book.needs_snapshot = True


# -- folds -----------------------------------------------------------------------------------


class Fold(msgspec.Struct, frozen=True, kw_only=True):
    """One fold: train on ``train`` (windows, in time order), test on ``test``."""

    index: int
    train: list[str]
    test: list[str]


def make_folds(windows: Sequence[str | Path], folds: int, mode: str = "anchored") -> list[Fold]:
    """The folds over ``windows`` (module doc): fold k tests on window W − F + k."""
    w = [str(p) for p in windows]
    if mode not in ("anchored", "rolling"):
        raise WalkForwardError(f"mode {mode!r}: expected 'anchored' or 'rolling'")
    if folds < 1:
        raise WalkForwardError(f"folds must be ≥ 1 (got {folds})")
    if len(w) < folds + 1:
        raise WalkForwardError(
            f"{folds} folds need at least {folds + 1} windows (got {len(w)}): give more "
            "recordings or slice one (slice_recording)"
        )
    size = len(w) - folds
    out = []
    for k in range(folds):
        t = size + k
        lo = 0 if mode == "anchored" else t - size
        out.append(Fold(index=k, train=w[lo:t], test=[w[t]]))
    return out


# -- held-out guard --------------------------------------------------------------------------


def check_held_out(
    inputs: Iterable[str | Path],
    held_out: Iterable[str | Path],
    hashes: dict[str, str] | None = None,
) -> None:
    """Raise ``HeldOutError`` when an input is a held-out recording, by path (resolved) or by
    content (SHA-256; ``hashes`` caches path → hex, filled as files are read)."""
    cache = hashes if hashes is not None else {}

    def digest(p: Path) -> str:
        key = str(p)
        if key not in cache:
            try:
                cache[key] = file_sha256(p)
            except OSError as exc:
                raise WalkForwardError(f"cannot read recording {p}: {exc}") from None
        return cache[key]

    held = [Path(h) for h in held_out]
    if not held:
        return
    by_path = {h.resolve(): h for h in held}
    by_hash = {digest(h): h for h in held}
    for p in (Path(i) for i in inputs):
        if p.resolve() in by_path:
            raise HeldOutError(
                f"held-out recording {by_path[p.resolve()]} is among the sweep inputs ({p}); "
                "held-out data is only replayed once, with the final candidate"
            )
        d = digest(p)
        if d in by_hash:
            raise HeldOutError(
                f"sweep input {p} has the same content (sha256 {d[:12]}…) as held-out "
                f"recording {by_hash[d]}"
            )


# -- metrics ---------------------------------------------------------------------------------


def pnl_per_hour(pnl_micros: int, span_ns: int) -> int | None:
    """PnL per hour of data, micros (floored); ``None`` for an empty span."""
    if span_ns <= 0:
        return None
    return pnl_micros * HOUR_NS // span_ns


def degradation(is_pnl: int, is_ns: int, oos_pnl: int, oos_ns: int) -> float | None:
    """1 − (OOS PnL per hour) / (IS PnL per hour), computed exactly and rounded to 6 places;
    ``None`` when either span is empty or the in-sample rate is not positive."""
    if is_ns <= 0 or oos_ns <= 0 or is_pnl <= 0:
        return None
    ratio = Fraction(oos_pnl, oos_ns) / Fraction(is_pnl, is_ns)
    return round(float(1 - ratio), 6)


class FoldResult(msgspec.Struct, kw_only=True):
    """One fold's outcome: the chosen ``params`` (field units) and ``config_id``, the
    ``in_sample`` (train) and ``out_of_sample`` (test) blocks (``sweep.combine`` columns, money
    in micros), the windows' event-time spans (ns), PnL per hour and the degradation."""

    index: int
    train: list[str]
    test: list[str]
    params: dict[str, int]
    config_id: str
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    train_ns: int
    test_ns: int
    is_pnl_per_hour_micros: int | None
    oos_pnl_per_hour_micros: int | None
    degradation: float | None


class WalkForwardReport(msgspec.Struct, kw_only=True):
    """Every fold, the aggregate IS / OOS blocks and degradation, the final candidate (tuned
    on every window: ``candidate_params``, ``candidate``, its ``full_sample`` block) and its
    ``held_out`` block (``None`` without held-out data). ``data_hashes``: SHA-256 of every
    window and held-out file, by path."""

    strategy: str
    mode: str
    objective: str
    search: str
    windows: list[str]
    window_ns: list[int]
    folds: list[FoldResult]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    is_pnl_per_hour_micros: int | None
    oos_pnl_per_hour_micros: int | None
    degradation: float | None
    candidate_params: dict[str, int]
    candidate_id: str
    candidate: PolylabConfig
    full_sample: dict[str, Any]
    held_out_paths: list[str]
    held_out: dict[str, Any] | None
    data_hashes: dict[str, str]

    def frame(self) -> pl.DataFrame:
        """One row per fold: windows, chosen params, IS / OOS trades and PnL (micros), PnL per
        hour (micros) and degradation."""
        rows = [
            {
                "fold": f.index,
                "train": ", ".join(Path(p).name for p in f.train),
                "test": ", ".join(Path(p).name for p in f.test),
                **f.params,
                "config_id": f.config_id,
                "is_trades": f.in_sample["trades"],
                "is_pnl_micros": f.in_sample["pnl_micros"],
                "oos_trades": f.out_of_sample["trades"],
                "oos_pnl_micros": f.out_of_sample["pnl_micros"],
                "is_pnl_per_hour_micros": f.is_pnl_per_hour_micros,
                "oos_pnl_per_hour_micros": f.oos_pnl_per_hour_micros,
                "degradation": f.degradation,
            }
            for f in self.folds
        ]
        return pl.DataFrame(rows)

    def metrics(self, paper: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The validation metrics dict of ``pipeline.outputs``' conventions."""
        return {
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
            "held_out": self.held_out,
            "paper": dict(paper) if paper is not None else None,
            "folds": [
                {
                    "index": f.index,
                    "params": f.params,
                    "config_id": f.config_id,
                    "in_sample": f.in_sample,
                    "out_of_sample": f.out_of_sample,
                    "is_pnl_per_hour_micros": f.is_pnl_per_hour_micros,
                    "oos_pnl_per_hour_micros": f.oos_pnl_per_hour_micros,
                    "degradation": f.degradation,
                }
                for f in self.folds
            ],
            "degradation": self.degradation,
            "is_pnl_per_hour_micros": self.is_pnl_per_hour_micros,
            "oos_pnl_per_hour_micros": self.oos_pnl_per_hour_micros,
            "full_sample": self.full_sample,
            "candidate_params": self.candidate_params,
        }


# -- walk-forward ----------------------------------------------------------------------------


def _best(df: pl.DataFrame, fields: Sequence[str], objective: str) -> dict[str, int]:
    """The row with the highest ``objective``, the first in sweep order among equals."""
    vals = df[objective].to_list()
    i = max(range(len(vals)), key=lambda j: (vals[j], -j))
    row = df.row(i, named=True)
    return {f: int(row[f]) for f in fields}


def _tune(
    client: Any,
    windows: Sequence[str],
    base: PolylabConfig,
    strategy: str,
    search: Sequence[Mapping[str, int]] | Mapping[str, Sequence[int]],
    objective: str,
    trials: int,
    seed: int,
    sweep_kw: Mapping[str, Any],
) -> tuple[dict[str, int], pl.DataFrame]:
    """Sweep ``windows``; the best params and the sweep's rows."""
    if isinstance(search, Mapping):
        fields = list(search)
        df = optuna_sweep(
            client,
            windows,
            base,
            strategy,
            search,
            trials=trials,
            seed=seed,
            objective=objective,
            **sweep_kw,
        )
    else:
        fields = list(dict.fromkeys(itertools.chain.from_iterable(search)))
        df = grid_sweep(client, windows, base, strategy, search, **sweep_kw)
    params = _best(df, fields, objective)
    return params, df


def walk_forward(
    client: Any,
    recordings: Sequence[str | Path],
    base_cfg: PolylabConfig,
    strategy: str,
    search: Sequence[Mapping[str, int]] | Mapping[str, Sequence[int]],
    *,
    folds: int,
    mode: str = "anchored",
    objective: str = "pnl_micros",
    held_out: Sequence[str | Path] = (),
    trials: int = 20,
    seed: int = 0,
    on_phase: Phase | None = None,
    **sweep_kw: Any,
) -> WalkForwardReport:
    """Walk-forward over ``recordings`` (the windows, in time order), then the final candidate
    tuned on every window and evaluated once on ``held_out`` (module doc).

    ``search``: grid points (``sweep_space.grid_points``) for a grid sweep, or a space (field →
    allowed values, field units) for a seeded Optuna search of ``trials`` trials.
    ``sweep_kw`` goes to the sweeps (``chunk_size``, ``meta``, ``starting_cash_micros``,
    ``progress``). Deterministic for a seed."""
    if objective not in OBJECTIVES:
        raise WalkForwardError(f"objective {objective!r}: expected one of {list(OBJECTIVES)}")
    if not isinstance(search, Mapping) and not search:
        raise WalkForwardError("search: no grid points")
    windows = [str(Path(r)) for r in recordings]
    held = [str(Path(h)) for h in held_out]
    hashes: dict[str, str] = {}
    check_held_out(windows, held, hashes)
    plan = make_folds(windows, folds, mode)
    spans = {w: _span_ns(w) for w in windows}
    phase = on_phase or (lambda _m: None)
    kw = dict(sweep_kw)
    results: list[FoldResult] = []
    is_parts: list[RunStats] = []
    oos_parts: list[RunStats] = []
    for fold in plan:
        phase(f"fold {fold.index}: tune on {len(fold.train)} window(s)")
        params, _ = _tune(
            client, fold.train, base_cfg, strategy, search, objective, trials, seed, kw
        )
        cfg = make_config(base_cfg, strategy, params)
        phase(f"fold {fold.index}: evaluate on train and test")
        stats = run_stats(client, [*fold.train, *fold.test], [cfg], **_eval_kw(kw))[0]
        n_train = len(fold.train)
        is_stats, oos_stats = stats[:n_train], stats[n_train:]
        is_parts.extend(is_stats)
        oos_parts.extend(oos_stats)
        train_ns = sum(spans[w] for w in fold.train)
        test_ns = sum(spans[w] for w in fold.test)
        is_block, oos_block = combine(is_stats), combine(oos_stats)
        results.append(
            FoldResult(
                index=fold.index,
                train=fold.train,
                test=fold.test,
                params=params,
                config_id=config_id(cfg),
                in_sample=is_block,
                out_of_sample=oos_block,
                train_ns=train_ns,
                test_ns=test_ns,
                is_pnl_per_hour_micros=pnl_per_hour(is_block["pnl_micros"], train_ns),
                oos_pnl_per_hour_micros=pnl_per_hour(oos_block["pnl_micros"], test_ns),
                degradation=degradation(
                    is_block["pnl_micros"], train_ns, oos_block["pnl_micros"], test_ns
                ),
            )
        )
    is_all, oos_all = combine(is_parts), combine(oos_parts)
    is_ns = sum(f.train_ns for f in results)
    oos_ns = sum(f.test_ns for f in results)
    phase(f"candidate: tune on all {len(windows)} window(s)")
    cparams, cdf = _tune(client, windows, base_cfg, strategy, search, objective, trials, seed, kw)
    candidate = make_config(base_cfg, strategy, cparams)
    cid = config_id(candidate)
    full = _row_block(cdf, cid)
    held_block: dict[str, Any] | None = None
    if held:
        phase(f"held_out: evaluate the candidate on {len(held)} recording(s)")
        held_block = combine(run_stats(client, held, [candidate], **_eval_kw(kw))[0])
    for w in windows:
        if w not in hashes:
            hashes[w] = file_sha256(w)
    return WalkForwardReport(
        strategy=strategy,
        mode=mode,
        objective=objective,
        search="optuna" if isinstance(search, Mapping) else "grid",
        windows=windows,
        window_ns=[spans[w] for w in windows],
        folds=results,
        in_sample=is_all,
        out_of_sample=oos_all,
        is_pnl_per_hour_micros=pnl_per_hour(is_all["pnl_micros"], is_ns),
        oos_pnl_per_hour_micros=pnl_per_hour(oos_all["pnl_micros"], oos_ns),
        degradation=degradation(is_all["pnl_micros"], is_ns, oos_all["pnl_micros"], oos_ns),
        candidate_params=cparams,
        candidate_id=cid,
        candidate=candidate,
        full_sample=full,
        held_out_paths=held,
        held_out=held_block,
        data_hashes={p: hashes[p] for p in [*windows, *held]},
    )


def _span_ns(path: str) -> int:
    first, last = recording_span(path)
    return last - first


def _eval_kw(kw: Mapping[str, Any]) -> dict[str, Any]:
    """Sweep keywords that also apply to a plain evaluation (no progress of a sweep)."""
    return {k: v for k, v in kw.items() if k != "progress"}


def _row_block(df: pl.DataFrame, cid: str) -> dict[str, Any]:
    """The metric columns of the sweep row of config ``cid``."""
    row = df.filter(pl.col("config_id") == cid).row(0, named=True)
    keys = combine([]).keys()
    return {k: row[k] for k in keys}


def fold_figure(report: WalkForwardReport) -> go.Figure:
    """In-sample against out-of-sample PnL per hour of data ($/h) for every fold, with each
    fold's degradation in its hover text."""
    import plotly.graph_objects as go

    from polylab.money import MICROS

    x = [f"fold {f.index}" for f in report.folds]

    def dollars(v: int | None) -> float | None:
        return None if v is None else v / MICROS

    fig = go.Figure()
    fig.add_bar(
        name="in-sample",
        x=x,
        y=[dollars(f.is_pnl_per_hour_micros) for f in report.folds],
    )
    fig.add_bar(
        name="out-of-sample",
        x=x,
        y=[dollars(f.oos_pnl_per_hour_micros) for f in report.folds],
        hovertext=[f"degradation {f.degradation}" for f in report.folds],
    )
    fig.update_layout(
        barmode="group",
        title=f"{report.strategy}: PnL per hour of data, in-sample vs out-of-sample "
        f"(degradation {report.degradation})",
        yaxis_title="PnL ($ per hour of data)",
        height=380,
    )
    return fig
