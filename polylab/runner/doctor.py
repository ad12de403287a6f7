"""``polylab doctor``: a preflight before any live session (issue 10 §4).

Every check ends in one ``Check`` line: ``pass``, ``warn`` (worth knowing, does not fail the
run), ``fail`` (a live session would not work) or ``skip`` (a check it depends on failed), each
with the fix in words. The report's exit code is 0 when nothing failed, 1 otherwise.

What is checked, in order:

* every endpoint of the venue profile answers (CLOB ``/`` and ``/time``, Gamma, Data API,
  geoblock, ESPN; the market and user WebSocket channels open and close; the sports channel
  when asked), with its latency (ms, for the operator's eyes only);
* the clock against the CLOB's ``/time`` (warn over 1 s, fail from 30 s: L1/L2 signatures carry
  the local time and the venue's tolerance is undocumented, protocol doc §3.2);
* the geoblock answer (``blocked`` fails);
* the account (``polylab.runner.doctor_account``): key, API credentials, signer/funder,
  collateral balance and allowances;
* the markets (``polylab.runner.doctor_markets``): version → signing domain, fee rates.

Nothing secret is ever put in a ``Check``: addresses and exchange contracts only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import httpx
import msgspec
import websockets
from websockets.asyncio.client import connect

from polylab.venue import VenueProfile

__all__ = [
    "SKEW_FAIL_S",
    "SKEW_WARN_S",
    "Check",
    "DoctorOptions",
    "DoctorReport",
    "endpoint_checks",
    "geoblock_check",
    "run_doctor",
    "skew_check",
]

Status = Literal["pass", "warn", "fail", "skip"]

SKEW_WARN_S = 1.0
"""Clock skew (s) above which the doctor warns."""
SKEW_FAIL_S = 30.0
"""Clock skew (s) from which the doctor fails: signed timestamps are likely refused."""


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the report. ``latency_ms``: round trip of the probe (display only)."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    latency_ms: float | None = None


class DoctorReport(msgspec.Struct, kw_only=True):
    """All checks of one run, in order, and the venue profile they ran against."""

    venue: str
    checks: list[Check] = msgspec.field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def exit_code(self) -> int:
        """0 when no check failed (warnings and skips included), else 1."""
        return 1 if self.failed else 0


class DoctorOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What to check. ``env``: where credentials are read (``POLY_PRIVATE_KEY``, ``POLY_API_*``;
    None: the environment overlaid on ``env_file``). ``markets``: Gamma ids, condition ids or
    slugs; empty: the ``top`` active markets by 24 h volume. ``signature_type`` / ``funder``:
    the wallet set-up the live session will use. ``sports``: probe the sports channel too.
    ``timeout_s``: per probe (s)."""

    profile: VenueProfile
    markets: tuple[str, ...] = ()
    top: int = 5
    env: Mapping[str, str] | None = None
    env_file: str | None = ".env"
    signature_type: int = 0
    funder: str | None = None
    sports: bool = True
    timeout_s: float = 5.0


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _http_probe(
    http: httpx.AsyncClient, name: str, url: str, fix: str
) -> tuple[Check, httpx.Response | None]:
    t0 = time.perf_counter()
    try:
        r = await http.get(url)
    except httpx.HTTPError as exc:
        return Check(name=name, status="fail", detail=f"{url}: {_why(exc)}", fix=fix), None
    lat = _ms(t0)
    if r.status_code >= 300:
        return (
            Check(
                name=name,
                status="fail",
                detail=f"{url}: HTTP {r.status_code}",
                fix=fix,
                latency_ms=lat,
            ),
            r,
        )
    return Check(name=name, status="pass", detail=f"{url}: HTTP {r.status_code}", latency_ms=lat), r


async def _ws_probe(name: str, url: str, timeout_s: float, fix: str, *, warn: bool) -> Check:
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with connect(url, open_timeout=timeout_s, close_timeout=timeout_s):
                lat = _ms(t0)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        status: Status = "warn" if warn else "fail"
        return Check(name=name, status=status, detail=f"{url}: {_why(exc)}", fix=fix)
    return Check(name=name, status="pass", detail=f"{url}: opened and closed", latency_ms=lat)


def skew_check(server_time: int, t0: float, t1: float) -> Check:
    """The clock check from one ``/time`` answer (unix s, or ms when it is that large) read
    between local wall times ``t0`` and ``t1`` (s). The answer is a whole second, so half a
    second is added before comparing with the midpoint of the request."""
    server_s = server_time / 1000 if server_time > 100_000_000_000 else float(server_time)
    skew = server_s + 0.5 - (t0 + t1) / 2
    detail = f"local clock is {abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} the CLOB"
    fix = "synchronise the system clock (NTP: timedatectl set-ntp true / chronyc makestep)"
    if abs(skew) >= SKEW_FAIL_S:
        return Check(name="clock skew", status="fail", detail=detail, fix=fix)
    if abs(skew) > SKEW_WARN_S:
        return Check(name="clock skew", status="warn", detail=detail, fix=fix)
    return Check(name="clock skew", status="pass", detail=detail)


async def _clock(http: httpx.AsyncClient, clob: str) -> tuple[Check, Check]:
    url = f"{clob}/time"
    fix = "check the CLOB URL (POLYMARKET_CLOB_URL / --url) and the network"
    t0_perf, t0 = time.perf_counter(), time.time()
    try:
        r = await http.get(url)
        t1 = time.time()
        lat = _ms(t0_perf)
        r.raise_for_status()
        value = msgspec.json.decode(r.content, type=int | str)
        server = int(value)
    except (httpx.HTTPError, msgspec.DecodeError, ValueError) as exc:
        bad = Check(name="CLOB /time", status="fail", detail=f"{url}: {_why(exc)}", fix=fix)
        return bad, Check(name="clock skew", status="skip", detail="no server time")
    ok = Check(name="CLOB /time", status="pass", detail=f"{url}: {server}", latency_ms=lat)
    return ok, skew_check(server, t0, t1)


class _Geo(msgspec.Struct):
    blocked: bool
    country: str = ""
    region: str = ""


def geoblock_check(body: bytes) -> Check:
    """The geoblock verdict from the body of the venue's geoblock answer."""
    try:
        geo = msgspec.json.decode(body, type=_Geo)
    except msgspec.DecodeError as exc:
        return Check(
            name="geoblock",
            status="fail",
            detail=f"unreadable answer: {exc}",
            fix="check POLYMARKET_GEOBLOCK_URL points at the venue's geoblock check",
        )
    where = "/".join(x for x in (geo.country, geo.region) if x) or "unknown region"
    if geo.blocked:
        return Check(
            name="geoblock",
            status="fail",
            detail=f"orders from this network are blocked ({where})",
            fix="trade only from a region the venue allows; orders from here are rejected",
        )
    return Check(name="geoblock", status="pass", detail=f"not blocked ({where})")


async def endpoint_checks(opts: DoctorOptions, http: httpx.AsyncClient) -> list[Check]:
    """Reachability of every endpoint of the profile, the clock and the geoblock verdict."""
    p = opts.profile
    net = "check the URL (venue profile / POLYMARKET_*_URL overrides) and the network"
    probes: list[Awaitable[tuple[Check, httpx.Response | None]]] = [
        _http_probe(http, "CLOB /", f"{p.clob}/", net),
        _http_probe(http, "Gamma", f"{p.gamma}/markets?limit=1", net),
        _http_probe(http, "Data API", p.data, net),  # its root answers {"data": "OK"}
        _http_probe(http, "geoblock endpoint", p.geoblock, net),
        _http_probe(http, "ESPN", p.scoreboard_url("football", "nfl"), net),
    ]
    ws: list[Awaitable[Check]] = [
        _ws_probe("market channel", p.market_ws, opts.timeout_s, net, warn=False),
        _ws_probe("user channel", p.user_ws, opts.timeout_s, net, warn=False),
    ]
    if opts.sports:
        fix = "the Sniper still has ESPN; check POLYMARKET_SPORTS_WS_URL, or pass --no-sports"
        ws.append(_ws_probe("sports channel", p.sports_ws, opts.timeout_s, fix, warn=True))
    http_res, ws_res, (time_check, skew) = await asyncio.gather(
        asyncio.gather(*probes), asyncio.gather(*ws), _clock(http, p.clob)
    )
    out = [c for c, _ in http_res[:1]] + [time_check] + [c for c, _ in http_res[1:]]
    out += ws_res
    out.append(skew)
    geo_check, geo_resp = next(x for x in http_res if x[0].name == "geoblock endpoint")
    if geo_check.status == "pass" and geo_resp is not None:
        out.append(geoblock_check(geo_resp.content))
    else:
        out.append(Check(name="geoblock", status="skip", detail="geoblock endpoint unreachable"))
    return out


async def run_doctor(
    opts: DoctorOptions, *, on_check: Callable[[Check], None] | None = None
) -> DoctorReport:
    """Run every check against ``opts.profile``; ``on_check`` sees each line as it is decided."""
    from polylab.runner.doctor_account import account_checks
    from polylab.runner.doctor_markets import market_checks, select_markets

    report = DoctorReport(venue=opts.profile.name)

    def add(checks: list[Check]) -> None:
        for c in checks:
            report.checks.append(c)
            if on_check is not None:
                on_check(c)

    timeout = httpx.Timeout(opts.timeout_s)
    async with httpx.AsyncClient(timeout=timeout) as http:
        add(await endpoint_checks(opts, http))
        selected, sel_checks = await select_markets(opts, http)
        add(sel_checks)
        add(await market_checks(opts, selected))
        add(await account_checks(opts, selected))
    return report
