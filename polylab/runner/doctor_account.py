"""The doctor's account checks: key, API credentials, wallet set-up, balance and allowances.

* **key**: ``POLY_PRIVATE_KEY`` present and a valid secp256k1 key (its value is never shown).
* **API credentials**: ``POLY_API_KEY``/``POLY_API_SECRET``/``POLY_API_PASSPHRASE`` all set, or
  none (then derived through L1: ``GET /auth/derive-api-key``, else ``POST /auth/api-key``);
  they are proven by the first L2 call (``/balance-allowance``). Nothing of them is shown.
* **wallet**: signature type 0 (EOA) trades from the key's own address, so the funder must be
  unset or equal to it; types 1 (proxy) and 2 (Safe) trade from another address, which must be
  set as the funder and differ from the signer; type 3 (deposit wallet) needs the funder.
* **balance / allowances** (protocol doc §0.1, §3.3): ``GET /balance-allowance`` with
  ``asset_type`` ``COLLATERAL`` (pUSD), ``CONDITIONAL`` (CTF positions, for v1 markets) and
  ``CONDITIONAL-V2`` (Protocol V2 positions, for v2 markets); every exchange the selected markets
  trade on must hold a non-zero allowance. When one is missing, the venue is asked to re-read
  the chain once (``/balance-allowance/update``) before the check fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values

from polylab.errors import AuthError, ClobError
from polylab.execution.eip712 import SigningKey, to_checksum_address
from polylab.execution.live import load_credentials
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.rest_policy import RestConfig
from polylab.execution.rest_types import BalanceAllowance
from polylab.execution.signing_v2 import EXCHANGES_V2, EXCHANGES_V3
from polylab.money import cash_to_str
from polylab.runner.doctor import Check, DoctorOptions
from polylab.runner.doctor_markets import Selected
from polylab.secret import ApiCreds

__all__ = ["account_checks", "wallet_check"]

_API_ENV = ("POLY_API_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE")
_TYPES = {0: "EOA", 1: "proxy", 2: "Safe", 3: "deposit wallet"}


def _skip(name: str, why: str) -> Check:
    return Check(name=name, status="skip", detail=why)


def wallet_check(signer: str, signature_type: int, funder: str | None) -> Check:
    """Signer, signature type and funder consistent (addresses only, nothing secret)."""
    name = "wallet"
    kind = _TYPES.get(signature_type)
    if kind is None:
        return Check(
            name=name,
            status="fail",
            detail=f"signature type {signature_type} is not 0 (EOA), 1 (proxy), 2 (Safe) or 3",
            fix="set [live] signature_type to 0, 1 or 2",
        )
    try:
        fund = to_checksum_address(funder) if funder else None
    except ValueError:
        return Check(
            name=name,
            status="fail",
            detail=f"funder {funder!r} is not an address",
            fix="set [live] funder to the 0x address holding the funds",
        )
    same = fund is not None and fund.lower() == signer.lower()
    if signature_type == 0 and fund is not None and not same:
        return Check(
            name=name,
            status="fail",
            detail=f"type 0 (EOA) signs and trades from {signer}, but the funder is {fund}",
            fix="unset [live] funder, or set signature_type 1 (proxy) / 2 (Safe) if it is yours",
        )
    if signature_type in (1, 2) and (fund is None or same):
        what = "unset" if fund is None else "the signer itself"
        return Check(
            name=name,
            status="fail",
            detail=f"type {signature_type} ({kind}) trades from another wallet; funder is {what}",
            fix=f"set [live] funder to your {kind} wallet address (shown on the venue's profile)",
        )
    if signature_type == 3 and fund is None:
        return Check(
            name=name,
            status="fail",
            detail="type 3 (deposit wallet) needs the wallet as funder",
            fix="set [live] funder to the deposit wallet address",
        )
    return Check(
        name=name,
        status="pass",
        detail=f"type {signature_type} ({kind}), signer {signer}, funder {fund or signer}",
    )


def _spenders(chain_id: int, selected: Iterable[Selected]) -> tuple[set[str], set[str]]:
    """(exchanges for v1 markets, exchanges for v2 markets) of the selected markets."""
    v1: set[str] = set()
    v2: set[str] = set()
    ctf, neg = EXCHANGES_V2.get(chain_id, ("", ""))
    v3 = EXCHANGES_V3.get(chain_id, "")
    for s in selected:
        m = s.market
        if m is None:
            continue
        if m.version == "v2":
            v2.add(v3)
        else:
            v1.add(neg if m.neg_risk else ctf)
    return {a for a in v1 if a}, {a for a in v2 if a}


def _missing(ba: BalanceAllowance, spenders: set[str]) -> list[str]:
    have = {k.lower(): v for k, v in ba.allowances.items()}
    return sorted(s for s in spenders if int(have.get(s.lower(), "0") or "0") <= 0)


async def _allowance(
    rest: AsyncClobRest,
    name: str,
    asset: str,
    token: str,
    spenders: set[str],
    sig_type: int,
    holder: str,
) -> Check:
    ba = await rest.get_balance_allowance(asset, token, sig_type)
    missing = _missing(ba, spenders)
    refreshed = ""
    if missing:  # the venue may not have read a fresh on-chain approval yet
        await rest.update_balance_allowance(asset, token, sig_type)
        ba = await rest.get_balance_allowance(asset, token, sig_type)
        missing = _missing(ba, spenders)
        refreshed = " (after /balance-allowance/update)"
    unit = "$" if asset == "COLLATERAL" else "shares"
    bal = f"balance {cash_to_str(ba.balance_micros)} {unit}"
    if missing:
        what = "pUSD (ERC-20 approve)" if asset == "COLLATERAL" else "positions (setApprovalForAll)"
        return Check(
            name=name,
            status="fail",
            detail=f"{bal}; no allowance for {', '.join(missing)}{refreshed}",
            fix=f"from {holder}, approve {what} for each exchange listed, on-chain; "
            "then run polylab doctor again (it asks the venue to re-read)",
        )
    if asset == "COLLATERAL" and ba.balance_micros <= 0:
        return Check(
            name=name,
            status="fail",
            detail=f"{bal}: nothing to buy with",
            fix=f"deposit pUSD to {holder}",
        )
    return Check(
        name=name,
        status="pass",
        detail=f"{bal}; allowance on {len(spenders)} exchange(s){refreshed}",
    )


async def _credentials(
    opts: DoctorOptions, rest: AsyncClobRest, env_creds: ApiCreds | None, partial: list[str]
) -> tuple[Check, ApiCreds | None]:
    name = "API credentials"
    if partial:
        return (
            Check(
                name=name,
                status="fail",
                detail=f"only some of POLY_API_* are set (missing {', '.join(partial)})",
                fix="set all three POLY_API_* or none (then they are derived through L1)",
            ),
            None,
        )
    if env_creds is not None:
        return Check(name=name, status="pass", detail="from the environment"), env_creds
    try:
        try:
            creds = await rest.derive_api_key()
        except ClobError:
            creds = await rest.create_api_key()
    except ClobError as exc:
        return (
            Check(
                name=name,
                status="fail",
                detail=f"cannot derive through L1: {type(exc).__name__}: {exc}",
                fix="check the CLOB is reachable, the key and the clock; "
                "or set POLY_API_KEY/SECRET/PASSPHRASE",
            ),
            None,
        )
    return Check(name=name, status="pass", detail="derived through L1 (not shown)"), creds


async def account_checks(opts: DoctorOptions, selected: list[Selected]) -> list[Check]:
    """Key, API credentials, wallet, balance and allowances, in that order."""
    deps = ["API credentials", "wallet", "collateral"]
    creds = load_credentials(opts.env, opts.env_file)
    if creds is None:
        return [
            Check(
                name="private key",
                status="fail",
                detail="POLY_PRIVATE_KEY is not set",
                fix="put POLY_PRIVATE_KEY=0x… in the environment or .env (see .env.example)",
            ),
            *(_skip(d, "needs the private key") for d in deps),
        ]
    try:
        key = SigningKey(creds.private_key.reveal())
    except ValueError:
        return [
            Check(
                name="private key",
                status="fail",
                detail="POLY_PRIVATE_KEY is not a 32-byte hex secp256k1 key (value not shown)",
                fix="set POLY_PRIVATE_KEY to the wallet's 64-hex-digit key",
            ),
            *(_skip(d, "needs a valid private key") for d in deps),
        ]
    out = [Check(name="private key", status="pass", detail=f"signer {key.address}")]
    wallet = wallet_check(key.address, opts.signature_type, opts.funder)
    partial = _partial_api_env(opts.env, opts.env_file)
    p = opts.profile
    cfg = RestConfig(url=p.clob, max_attempts=1, timeout_s=opts.timeout_s, chain_id=p.chain_id)
    async with AsyncClobRest(cfg, key=key) as rest:
        cred_check, api = await _credentials(opts, rest, creds.creds, partial)
        out += [cred_check, wallet]
        if api is None:
            return [*out, _skip("collateral", "needs API credentials")]
        rest.creds = api
        holder = _holder(key.address, opts.funder)
        v1, v2 = _spenders(p.chain_id, selected)
        everything = (v1 | v2) or _all_exchanges(p.chain_id)
        st = opts.signature_type
        try:
            out.append(
                await _allowance(rest, "collateral", "COLLATERAL", "", everything, st, holder)
            )
            for label, asset, spenders, ver in (
                ("positions CTF", "CONDITIONAL", v1, "v1"),
                ("positions V2", "CONDITIONAL-V2", v2, "v2"),
            ):
                token = _first_token(selected, ver)
                if spenders and token:
                    out.append(await _allowance(rest, label, asset, token, spenders, st, holder))
        except AuthError as exc:
            i = next(i for i, c in enumerate(out) if c.name == "API credentials")
            from_env = creds.creds is not None
            out[i] = Check(
                name="API credentials",
                status="fail",
                detail=f"{'from the environment' if from_env else 'derived through L1'}, "
                f"refused by the CLOB ({exc.status}) on /balance-allowance",
                fix="fix POLY_API_KEY/SECRET/PASSPHRASE, or unset them to derive through L1"
                if from_env
                else "check the clock (L2 signatures carry the local time)",
            )
            out.append(_skip("collateral", "API credentials refused"))
        except ClobError as exc:
            out.append(
                Check(
                    name="collateral",
                    status="fail",
                    detail=f"/balance-allowance: {type(exc).__name__}: {exc}",
                    fix="check the CLOB URL and retry",
                )
            )
    return out


def _holder(signer: str, funder: str | None) -> str:
    """The address that holds the funds: the funder when set, else the signer."""
    return funder or signer


def _all_exchanges(chain_id: int) -> set[str]:
    return {a for a in (*EXCHANGES_V2.get(chain_id, ()), EXCHANGES_V3.get(chain_id, "")) if a}


def _first_token(selected: list[Selected], version: str) -> str:
    for s in selected:
        if s.market is not None and s.market.version == version:
            return s.market.token_ids[0]
    return ""


def _partial_api_env(env: Mapping[str, str] | None, env_file: str | None) -> list[str]:
    """Names of the ``POLY_API_*`` variables missing when some but not all are set (read like
    ``load_credentials``: ``env`` or the environment, over ``env_file``)."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(env if env is not None else os.environ)
    set_ = [k for k in _API_ENV if values.get(k)]
    return [k for k in _API_ENV if k not in set_] if set_ else []
