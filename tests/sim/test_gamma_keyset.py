"""Gamma keyset lists, slug lookups and the JSON error envelope of unknown routes (issue 9 §4).

Over real sockets against a fresh simulator; the offset list (``/gamma/markets``), already
checked against real captures in ``test_gamma_sports.py``, is the reference the keyset pages
must reproduce.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from polylab.market import Market
from polylab.sim.config import SimConfig
from polylab.sim.server import SimHandle, running_sim

CFG = SimConfig(seed=13, binary_markets=4, negrisk_events=2, negrisk_outcomes=(3, 5))


def run(
    cfg: SimConfig, scenario: Callable[[SimHandle, httpx.AsyncClient], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with (
            running_sim(cfg) as sim,
            httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
        ):
            await scenario(sim, http)

    asyncio.run(asyncio.wait_for(main(), 30))


async def walk(http: httpx.AsyncClient, path: str, key: str, **params: Any) -> list[list[Any]]:
    """Every page of a keyset list, following ``next_cursor`` until it is absent."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        q = dict(params, **({"after_cursor": cursor} if cursor else {}))
        r = await http.get(path, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body[key])
        cursor = body.get("next_cursor")
        assert cursor != ""  # absent on the last page, never empty (the SDK refuses "")
        if cursor is None:
            return pages


def test_keyset_pages_cover_the_offset_list_in_order() -> None:
    async def scenario(sim: SimHandle, http: httpx.AsyncClient) -> None:
        everything = (await http.get("/gamma/markets", params={"limit": 1000})).json()
        pages = await walk(http, "/gamma/markets/keyset", "markets", limit=3)
        assert all(len(p) == 3 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 3
        seen = [m["id"] for p in pages for m in p]
        # the generator may list more between the two reads: a prefix, in the same order
        assert seen[: len(everything)] == [m["id"] for m in everything]
        assert len(seen) == len(set(seen)) >= 10
        events = (await http.get("/gamma/events", params={"limit": 1000})).json()
        epages = await walk(http, "/gamma/events/keyset", "events", limit=2)
        got = [e["id"] for p in epages for e in p]
        assert got[: len(events)] == [e["id"] for e in events]
        assert any(len(e["markets"]) >= 3 for p in epages for e in p)  # neg-risk embeds all
        # filters apply to keyset lists as to offset lists
        first = everything[0]
        r = await http.get("/gamma/markets/keyset", params={"slug": first["slug"]})
        assert [m["id"] for m in r.json()["markets"]] == [first["id"]]
        assert "next_cursor" not in r.json()
        r = await http.get("/gamma/events/keyset", params={"closed": "false", "limit": 1000})
        assert r.json()["events"] and all(not e["closed"] for e in r.json()["events"])

    run(CFG, scenario)


def test_a_market_listed_between_pages_appears_later_and_nothing_shifts() -> None:
    async def scenario(sim: SimHandle, http: httpx.AsyncClient) -> None:
        r = await http.get("/gamma/markets/keyset", params={"limit": 2})
        first, cursor = r.json()["markets"], r.json()["next_cursor"]
        new = Market(
            condition_id="0x" + "ab" * 32,
            token_ids=("111", "222"),
            outcomes=("Yes", "No"),
            question="Listed between two pages?",
            slug="listed-between-pages",
            version="v1",
        )
        sim.state.exchange.add_market(new)
        rest = await walk(http, "/gamma/markets/keyset", "markets", limit=2)  # from the start
        ids = [m["id"] for p in rest for m in p]
        assert ids[:2] == [m["id"] for m in first]
        r = await http.get("/gamma/markets/keyset", params={"limit": 1000, "after_cursor": cursor})
        after = [m["slug"] for m in r.json()["markets"]]
        assert after[-1] == "listed-between-pages" and len(ids) == len(after) + 2

    run(SimConfig(seed=4, generator=False), scenario)


def test_slug_lookups_answer_the_item_or_a_json_404() -> None:
    async def scenario(sim: SimHandle, http: httpx.AsyncClient) -> None:
        markets = (await http.get("/gamma/markets")).json()
        events = (await http.get("/gamma/events")).json()
        for m in markets:
            r = await http.get(f"/gamma/markets/slug/{m['slug']}")
            assert r.status_code == 200 and r.json()["conditionId"] == m["conditionId"]
        for e in events:
            r = await http.get(f"/gamma/events/slug/{e['slug']}")
            assert r.status_code == 200 and r.json()["id"] == e["id"]
            assert [x["id"] for x in r.json()["markets"]] == [x["id"] for x in e["markets"]]
        for path in ("/gamma/markets/slug/no-such-market", "/gamma/events/slug/no-such-event"):
            r = await http.get(path)
            assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
            assert "not found" in r.json()["error"]

    run(SimConfig(seed=4, generator=False), scenario)


def test_bad_keyset_paging_is_a_400_with_the_error_envelope() -> None:
    async def scenario(sim: SimHandle, http: httpx.AsyncClient) -> None:
        for params in (
            {"after_cursor": "not base64 !"},
            {"after_cursor": "ZXZlbnRzOjE="},  # "events:1": another list's cursor
            {"after_cursor": "bWFya2V0czo5OTk5OTk5"},  # "markets:9999999": no such market
            {"limit": "0"},
            {"limit": "x"},
        ):
            r = await http.get("/gamma/markets/keyset", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.json()["error"]

    run(SimConfig(seed=4, generator=False), scenario)


def test_unknown_routes_answer_in_the_json_error_envelope() -> None:
    async def scenario(sim: SimHandle, http: httpx.AsyncClient) -> None:
        for method, path, status in (
            ("GET", "/gamma/no-such-route", 404),
            ("GET", "/no/such/route", 404),
            ("GET", "/gamma/markets/1/2/3", 404),
            ("DELETE", "/book", 405),
        ):
            r = await http.request(method, path)
            assert r.status_code == status, (path, r.text)
            assert r.headers["content-type"].startswith("application/json")
            assert path in r.json()["error"]
        # a handler's own 404 keeps its message
        r = await http.get("/gamma/markets/424242")
        assert r.status_code == 404 and r.json() == {"error": "market not found"}

    run(SimConfig(seed=4, generator=False), scenario)
