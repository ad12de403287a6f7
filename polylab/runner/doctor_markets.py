"""The doctor's market checks: which markets, their signing domain, their fee rates.

Markets are chosen by ``--markets`` (Gamma ids, ``0x`` condition ids or slugs) or as the ``top``
active markets by 24 h volume. For each one:

* **domain**: Gamma's ``version`` decides how orders are signed (protocol doc §0.1, §4.2):
  ``"v1"`` (CTF) → domain ``"2"`` on CTFExchangeV2, or the NegRisk V2 exchange when the market
  is neg-risk; ``"v2"`` (Protocol V2) → domain ``"3"`` on ExchangeV3. A missing or unknown
  version fails (an order could only be signed for a guessed exchange and would be refused).
  The CLOB must know the token and agree on neg-risk, and its ``/version`` must be 2 (V2
  orders; polylab does not sign for the legacy generation live).
* **fees**: Gamma's ``feeSchedule`` (``feesEnabled``), else the CLOB's ``/clob-markets`` ``fd``;
  a fee-enabled market publishing neither is priced with the configured fallback rate
  (``SUMTO100_FEE_RATE``): warn.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import msgspec

from polylab.errors import ClobError, DiscoveryError, NotFound
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.rest_policy import RestConfig
from polylab.execution.signing_v2 import exchange_domain
from polylab.feed.discovery import GammaMarket, decode_markets, market_from_gamma
from polylab.market import Market
from polylab.runner.doctor import Check, DoctorOptions

__all__ = ["Selected", "domain_check", "fee_check", "market_checks", "select_markets"]


class Selected(msgspec.Struct, frozen=True):
    """One selected market: Gamma's object and, when it could be read, polylab's ``Market``."""

    gamma: GammaMarket
    market: Market | None
    error: str = ""

    @property
    def label(self) -> str:
        """Short name for report lines (slug, else id)."""
        g = self.gamma
        return (g.slug or str(g.id) or g.condition_id)[:48]


class _Rank(msgspec.Struct):
    volume24hr: Decimal | None = None


def _select(gms: list[GammaMarket]) -> list[Selected]:
    out = []
    for gm in gms:
        try:
            out.append(Selected(gm, market_from_gamma(gm)))
        except DiscoveryError as exc:
            out.append(Selected(gm, None, str(exc)))
    return out


async def _gamma(http: httpx.AsyncClient, url: str, params: dict[str, str]) -> list[GammaMarket]:
    r = await http.get(url, params=params)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return decode_markets(r.content)


async def select_markets(
    opts: DoctorOptions, http: httpx.AsyncClient
) -> tuple[list[Selected], list[Check]]:
    """Read the chosen markets from Gamma; one ``markets`` line says which (or why none)."""
    gamma = opts.profile.gamma
    found: list[GammaMarket] = []
    missing: list[str] = []
    try:
        if opts.markets:
            for ref in opts.markets:
                if ref.isdigit():
                    got = await _gamma(http, f"{gamma}/markets/{ref}", {})
                elif ref.startswith("0x"):
                    got = await _gamma(http, f"{gamma}/markets", {"condition_ids": ref})
                else:
                    got = await _gamma(http, f"{gamma}/markets/slug/{ref}", {})
                found.extend(got[:1])
                if not got:
                    missing.append(ref)
        else:
            q = {"active": "true", "closed": "false", "order": "volume24hr", "ascending": "false"}
            r = await http.get(f"{gamma}/markets", params={**q, "limit": "100"})
            r.raise_for_status()
            gms = decode_markets(r.content)
            ranks = msgspec.json.decode(r.content, type=list[_Rank])
            order = sorted(range(len(gms)), key=lambda i: -(ranks[i].volume24hr or 0))
            found = [gms[i] for i in order[: opts.top]]
    except (httpx.HTTPError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        return [], [
            Check(
                name="markets",
                status="fail",
                detail=f"cannot read markets from Gamma ({gamma}): {type(exc).__name__}: {exc}",
                fix="check POLYMARKET_GAMMA_URL and the network",
            )
        ]
    selected = _select(found)
    names = ", ".join(s.label for s in selected) or "none"
    if missing:
        return selected, [
            Check(
                name="markets",
                status="fail",
                detail=f"not found on Gamma: {', '.join(missing)}; found: {names}",
                fix="pass Gamma market ids, 0x condition ids or slugs of listed markets",
            )
        ]
    if not selected:
        return selected, [
            Check(
                name="markets",
                status="fail",
                detail="no active market found",
                fix="pass --markets, or check the venue lists active markets",
            )
        ]
    return selected, [Check(name="markets", status="pass", detail=f"{len(selected)}: {names}")]


def domain_check(
    sel: Selected, chain_id: int, clob_neg_risk: bool | None, clob_error: str = ""
) -> Check:
    """Version → signing domain of one market. ``clob_neg_risk``: the CLOB's ``/neg-risk`` of
    its first token; None when it could not be read: ``clob_error`` says why (empty: the CLOB
    answered that it does not know the token)."""
    name = f"domain {sel.label}"
    if sel.market is None:
        return Check(
            name=name,
            status="fail",
            detail=sel.error,
            fix="do not trade this market: polylab cannot tell which exchange signs its orders",
        )
    m = sel.market
    if clob_neg_risk is None and clob_error:
        return Check(
            name=name,
            status="fail",
            detail=f"{m.version}; the CLOB could not be asked about its token: {clob_error}",
            fix="check the CLOB URL and the network",
        )
    if clob_neg_risk is None:
        return Check(
            name=name,
            status="fail",
            detail="the CLOB does not know its token (no book yet)",
            fix="wait until the CLOB lists the market, or drop it from --markets",
        )
    if m.version == "v2":
        d = exchange_domain(3, chain_id)
        where = "ExchangeV3"
    else:
        if clob_neg_risk != m.neg_risk:
            return Check(
                name=name,
                status="fail",
                detail=f"Gamma says neg_risk={m.neg_risk}, the CLOB says {clob_neg_risk}",
                fix="do not trade it until both agree: orders would go to the wrong exchange",
            )
        d = exchange_domain(2, chain_id, neg_risk=m.neg_risk)
        where = "NegRisk V2 exchange" if m.neg_risk else "CTFExchangeV2"
    return Check(
        name=name,
        status="pass",
        detail=f"{m.version} → domain {d.version!r}, {where} {d.verifying_contract}",
    )


def _dec(v: Decimal) -> str:
    return format(v.normalize(), "f")


def fee_check(sel: Selected, clob_fee: tuple[Decimal, Decimal] | None, base_fee: int) -> Check:
    """Fee rate of one market: Gamma's schedule, else the CLOB's ``fd`` (``clob_fee``: rate,
    exponent), else the configured fallback (warn). ``base_fee``: the CLOB's ``/fee-rate``
    (bps, shown only)."""
    name = f"fees {sel.label}"
    g = sel.gamma
    bps = f"; /fee-rate base_fee {base_fee} bps" if base_fee >= 0 else ""
    if not g.fees_enabled:
        return Check(name=name, status="pass", detail=f"fee-free market{bps}")
    if g.fee_schedule is not None:
        fs = g.fee_schedule
        return Check(
            name=name,
            status="pass",
            detail=f"rate {_dec(fs.rate)}, exponent {_dec(fs.exponent)} (Gamma feeSchedule){bps}",
        )
    if clob_fee is not None:
        rate, exp = (_dec(v) for v in clob_fee)
        return Check(
            name=name,
            status="pass",
            detail=f"rate {rate}, exponent {exp} (CLOB /clob-markets){bps}",
        )
    return Check(
        name=name,
        status="warn",
        detail=f"fees enabled but no schedule published: the fallback rate is used{bps}",
        fix="set SUMTO100_FEE_RATE / CLIPPER_FEE_RATE to the market's category rate",
    )


async def _market_lines(rest: AsyncClobRest, sel: Selected, chain_id: int) -> list[Check]:
    m = sel.market
    neg: bool | None = None
    base_fee = -1
    clob_fee: tuple[Decimal, Decimal] | None = None
    why = ""
    if m is not None:
        token = m.token_ids[0]
        try:
            neg = await rest.get_neg_risk(token)
            base_fee = await rest.get_fee_rate(token)
            fd = (await rest.get_clob_market_info(m.condition_id)).fee
            clob_fee = (fd.rate, fd.exponent) if fd is not None else None
        except NotFound:
            pass  # the CLOB does not list it (yet)
        except ClobError as exc:
            why = f"{type(exc).__name__}: {exc}"
    return [domain_check(sel, chain_id, neg, why), fee_check(sel, clob_fee, base_fee)]


async def market_checks(opts: DoctorOptions, selected: list[Selected]) -> list[Check]:
    """The CLOB's order generation, then domain and fee lines of every selected market."""
    p = opts.profile
    cfg = RestConfig(url=p.clob, max_attempts=1, timeout_s=opts.timeout_s, chain_id=p.chain_id)
    async with AsyncClobRest(cfg) as rest:
        try:
            version = await rest.get_version()
        except ClobError as exc:
            out = [
                Check(
                    name="order version",
                    status="fail",
                    detail=f"CLOB /version unreadable: {exc}",
                    fix="check the CLOB URL; polylab needs to know which orders the venue takes",
                )
            ]
        else:
            ok = version == 2
            out = [
                Check(
                    name="order version",
                    status="pass" if ok else "fail",
                    detail=f"CLOB /version {version} ({'CLOB V2 orders' if ok else 'not V2'})",
                    fix="" if ok else "polylab signs CLOB V2 orders only; this venue will refuse",
                )
            ]
        for sel in selected:
            out += await _market_lines(rest, sel, p.chain_id)
    return out
