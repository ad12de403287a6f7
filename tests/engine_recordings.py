"""Hand-built recordings whose right answers are computed by hand in the tests."""

from __future__ import annotations

import json
from pathlib import Path

from polylab.feed.recording import RecordingWriter
from polylab.fees import FeeModel
from polylab.market import Market

T0 = 1_800_000_000_000_000_000


def negrisk_markets(n: int = 3, *, event_markets: int = 0) -> list[Market]:
    return [
        Market(
            condition_id=f"0x{i:064x}",
            token_ids=(f"{100 + i}", f"{200 + i}"),
            question=f"Outcome {i}?",
            neg_risk=True,
            event_id="ev-1",
            fee=FeeModel.from_rate("0.04"),
            event_markets=event_markets,
        )
        for i in range(n)
    ]


def book(m: Market, yes: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> dict:
    return {
        "market": m.condition_id,
        "asset_id": m.token_ids[0 if yes else 1],
        "timestamp": "1",
        "hash": "h",
        "tick_size": "0.01",
        "last_trade_price": "",
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
        "event_type": "book",
    }


def write_negrisk_arb(
    path: Path,
    *,
    yes_ask: str = "0.30",
    size: str = "100",
    resolve_winner: int | None = 0,
    event_markets: int = 0,
) -> list[Market]:
    """Three-outcome neg-risk event whose YES asks sum to 0.90 (``size`` shares each); the NO
    books mirror the YES books. A harmless change at +200 ms, resolutions at +1 s.
    ``event_markets``: how many markets the source says the event has (0: not said)."""
    ms = negrisk_markets(event_markets=event_markets)
    comp = f"{1 - float(yes_ask) + 0.05:.2f}"  # NO ask = 1 − YES bid, YES bid = ask − 0.05
    bid = f"{float(yes_ask) - 0.05:.2f}"
    frames = []
    for m in ms:
        frames.append(book(m, True, [(bid, "500")], [(yes_ask, size)]))
        frames.append(book(m, False, [(f"{1 - float(yes_ask):.2f}", size)], [(comp, "500")]))
    with RecordingWriter(path) as w:
        w.write_meta(ms, T0)
        w.write("market", json.dumps(frames), T0 + 1_000_000)
        w.write(
            "market",
            json.dumps(
                {
                    "market": ms[0].condition_id,
                    "event_type": "price_change",
                    "timestamp": "2",
                    "price_changes": [
                        {
                            "asset_id": ms[0].token_ids[0],
                            "price": "0.01",
                            "size": "5",
                            "side": "BUY",
                            "best_bid": bid,
                            "best_ask": yes_ask,
                        }
                    ],
                }
            ),
            T0 + 200_000_000,
        )
        if resolve_winner is not None:
            for i, m in enumerate(ms):
                win = m.token_ids[0] if i == resolve_winner else m.token_ids[1]
                w.write(
                    "market",
                    json.dumps(
                        {
                            "event_type": "market_resolved",
                            "market": m.condition_id,
                            "assets_ids": list(m.token_ids),
                            "winning_asset_id": win,
                            "winning_outcome": "Yes" if i == resolve_winner else "No",
                            "timestamp": "3",
                        }
                    ),
                    T0 + 1_000_000_000 + i,
                )
    return ms
