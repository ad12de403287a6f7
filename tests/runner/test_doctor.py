"""``polylab doctor`` against the real local simulator over real sockets: the all-pass case, a
failing case per check (unreachable host, skewed clock, geoblock, missing allowance with
``--require-approval``, wrong funder, missing key, refused credentials) and operator errors.
Keys and secrets planted in the environment must never appear in the output."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from polylab.cli import app
from polylab.execution.auth import l1_headers
from polylab.execution.eip712 import SigningKey, address_from_private_key
from polylab.feed.discovery import decode_markets
from polylab.runner.doctor import skew_check
from polylab.runner.doctor_account import wallet_check
from polylab.runner.doctor_markets import Selected, domain_check, fee_check
from polylab.secret import ApiCreds
from polylab.sim import SimConfig, SimThread
from polylab.venue import ENV_KEYS

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = address_from_private_key(KEY)
OTHER = "0x" + "ab" * 20


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``.env`` and no endpoint or credential overrides leak in from the machine."""
    monkeypatch.chdir(tmp_path)
    for k in (*ENV_KEYS, "POLY_PRIVATE_KEY", "POLY_API_KEY", "POLY_API_SECRET"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.delenv("POLY_API_PASSPHRASE", raising=False)


def sim(**kw: Any) -> SimThread:
    return SimThread(SimConfig(generator=False, seed=3, **kw)).start()


@pytest.fixture
def plain() -> Iterator[SimThread]:
    s = sim()
    yield s
    s.stop()


def doctor(
    s: SimThread, *extra: str, env: dict[str, str] | None = None, as_json: bool = True
) -> tuple[int, dict[str, Any], str]:
    """Run the CLI in-process; (exit code, JSON report or {}, all output)."""
    args = ["doctor", "--venue", "sim", "--url", s.url, *extra]
    if as_json:
        args.append("--json")
    res = CliRunner().invoke(
        app, args, env={"POLY_PRIVATE_KEY": KEY, "COLUMNS": "250", **(env or {})}
    )
    report = json.loads(res.stdout) if as_json and res.stdout.strip() else {}
    return res.exit_code, report, res.output


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- all pass ------------------------------------------------------------------------------------
def test_all_checks_pass_on_the_simulator(plain: SimThread) -> None:
    code, report, _ = doctor(plain)
    st = statuses(report)
    assert code == 0 and report["ok"] is True, st
    assert set(st.values()) == {"pass"}, st
    for name in ("CLOB /", "CLOB /time", "Gamma", "Data API", "geoblock endpoint", "ESPN"):
        assert st[name] == "pass"
    for name in ("market channel", "user channel", "sports channel", "clock skew", "geoblock"):
        assert st[name] == "pass"
    for name in ("private key", "API credentials", "wallet", "collateral"):
        assert st[name] == "pass"
    checks = by_name(report)
    assert checks["CLOB /"]["latency_ms"] is not None
    assert ADDRESS in checks["private key"]["detail"]
    # the default selection holds CTF, Protocol-V2 and neg-risk markets: each gets its domain
    domains = [c["detail"] for c in report["checks"] if c["name"].startswith("domain ")]
    assert any("v1 → domain '2', CTFExchangeV2" in d for d in domains)
    assert any("v2 → domain '3', ExchangeV3" in d for d in domains)
    assert any("NegRisk V2 exchange" in d for d in domains)
    assert st["positions CTF"] == st["positions V2"] == "pass"
    fees = [c["detail"] for c in report["checks"] if c["name"].startswith("fees ")]
    assert any("rate 0.07" in f for f in fees) and any("fee-free" in f for f in fees)


def test_table_output_and_selection_by_slug_id_and_condition_id(plain: SimThread) -> None:
    r = httpx.get(f"{plain.url}/gamma/markets")
    first, second = r.json()[:2]
    refs = f"{first['slug']},{second['id']},{second['conditionId']}"
    code, _, out = doctor(plain, "--markets", refs, as_json=False)
    assert code == 0, out
    assert "all checks passed" in out and f"domain {first['slug']}" in out
    code, report, _ = doctor(plain, "--markets", "no-such-market")
    assert code == 1 and statuses(report)["markets"] == "fail"
    assert "no-such-market" in by_name(report)["markets"]["detail"]


def test_polymarket_profile_with_base_urls_overridden(plain: SimThread) -> None:
    """The production profile (``--venue polymarket``, the default) pointed at the simulator
    through the configuration overrides: only host and port differ."""
    u, w = plain.url, plain.ws_url
    env = {
        "POLYMARKET_CLOB_URL": u,
        "POLYMARKET_WS_URL": f"{w}/ws/market",
        "POLYMARKET_USER_WS_URL": f"{w}/ws/user",
        "POLYMARKET_GAMMA_URL": f"{u}/gamma",
        "POLYMARKET_DATA_URL": f"{u}/data-api",
        "ESPN_URL": f"{u}/espn",
        "POLYMARKET_GEOBLOCK_URL": f"{u}/api/geoblock",
        "POLY_PRIVATE_KEY": KEY,
    }
    res = CliRunner().invoke(app, ["doctor", "--no-sports", "--json", "--top", "2"], env=env)
    report = json.loads(res.stdout)
    assert res.exit_code == 0 and report["venue"] == "polymarket", report
    assert set(statuses(report).values()) == {"pass"}
    assert by_name(report)["Gamma"]["detail"].startswith(f"{u}/gamma/markets")


# -- one failing case per check --------------------------------------------------------------------
def test_unreachable_host_fails_its_check_only(plain: SimThread) -> None:
    port = closed_port()
    code, report, _ = doctor(plain, env={"POLYMARKET_DATA_URL": f"http://127.0.0.1:{port}"})
    st = statuses(report)
    assert code == 1 and st["Data API"] == "fail", st
    assert f"127.0.0.1:{port}" in by_name(report)["Data API"]["detail"]
    assert by_name(report)["Data API"]["fix"]
    assert [n for n, v in st.items() if v != "pass"] == ["Data API"]


def test_unreachable_websocket_fails(plain: SimThread) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/ws/market"
    code, report, _ = doctor(plain, env={"POLYMARKET_WS_URL": url})
    assert code == 1 and statuses(report)["market channel"] == "fail"


def test_unreachable_sports_channel_only_warns(plain: SimThread) -> None:
    """The sports channel is a second result source next to ESPN: missing it is a warning."""
    url = f"ws://127.0.0.1:{closed_port()}/ws"
    res = CliRunner().invoke(
        app,
        ["doctor", "--venue", "sim", "--url", plain.url, "--json"],
        env={"POLY_PRIVATE_KEY": KEY, "POLYMARKET_SPORTS_WS_URL": url},
    )
    report = json.loads(res.stdout)
    assert statuses(report)["sports channel"] == "warn"
    assert res.exit_code == 0 and report["ok"] is True


def test_skewed_clock_warns_then_fails() -> None:
    s = sim(time_offset_s=5.0)
    try:
        code, report, _ = doctor(s)
    finally:
        s.stop()
    assert code == 0 and statuses(report)["clock skew"] == "warn"  # warnings do not fail
    assert "behind" in by_name(report)["clock skew"]["detail"]
    s = sim(time_offset_s=-120.0)
    try:
        code, report, _ = doctor(s)
    finally:
        s.stop()
    assert code == 1 and statuses(report)["clock skew"] == "fail"
    assert "ahead" in by_name(report)["clock skew"]["detail"]


def test_geoblocked_region_fails() -> None:
    s = sim(geo_blocked=True)
    try:
        code, report, _ = doctor(s)
    finally:
        s.stop()
    assert code == 1 and statuses(report)["geoblock"] == "fail"
    assert "US/NY" in by_name(report)["geoblock"]["detail"]


def test_missing_allowance_fails_until_approved() -> None:
    s = sim(require_approval=True)
    try:
        code, report, _ = doctor(s)
        st = statuses(report)
        assert code == 1 and st["collateral"] == "fail", st
        assert st["positions CTF"] == st["positions V2"] == "fail"
        detail = by_name(report)["collateral"]["detail"]
        assert "0xE111180000d2663C0091e4f400237545B87B996B" in detail
        assert "approve" in by_name(report)["collateral"]["fix"]
        # the on-chain approval (simulated), then the doctor's own /balance-allowance/update
        r = httpx.post(f"{s.url}/sim/approve", json={"address": ADDRESS})
        assert r.status_code == 200
        code, report, _ = doctor(s)
    finally:
        s.stop()
    st = statuses(report)
    assert code == 0 and st["collateral"] == "pass", st
    assert "after /balance-allowance/update" in by_name(report)["collateral"]["detail"]


def _config(tmp_path: Path, signature_type: int, funder: str | None) -> str:
    lines = ["[live]", f"signature_type = {signature_type}"]
    if funder is not None:
        lines.append(f'funder = "{funder}"')
    p = tmp_path / "polylab.toml"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_wrong_funder_fails(plain: SimThread, tmp_path: Path) -> None:
    code, report, _ = doctor(plain, "--config", _config(tmp_path, 0, OTHER))
    assert code == 1 and statuses(report)["wallet"] == "fail"
    assert "unset [live] funder" in by_name(report)["wallet"]["fix"]
    code, report, _ = doctor(plain, "--config", _config(tmp_path, 1, None))
    assert code == 1 and statuses(report)["wallet"] == "fail"
    code, report, _ = doctor(plain, "--config", _config(tmp_path, 2, ADDRESS))
    assert code == 1 and statuses(report)["wallet"] == "fail"
    code, report, _ = doctor(plain, "--config", _config(tmp_path, 1, OTHER))
    assert statuses(report)["wallet"] == "pass", report


def test_wallet_rules() -> None:
    assert wallet_check(ADDRESS, 0, None).status == "pass"
    assert wallet_check(ADDRESS, 0, ADDRESS.lower()).status == "pass"
    assert wallet_check(ADDRESS, 0, OTHER).status == "fail"
    assert wallet_check(ADDRESS, 2, OTHER).status == "pass"
    assert wallet_check(ADDRESS, 2, None).status == "fail"
    assert wallet_check(ADDRESS, 1, "0x12").status == "fail"
    assert wallet_check(ADDRESS, 7, OTHER).status == "fail"


def test_missing_key_fails_and_skips_what_needs_it(plain: SimThread) -> None:
    code, report, _ = doctor(plain, env={"POLY_PRIVATE_KEY": ""})
    st = statuses(report)
    assert code == 1 and st["private key"] == "fail"
    assert st["API credentials"] == st["wallet"] == st["collateral"] == "skip"
    assert "POLY_PRIVATE_KEY" in by_name(report)["private key"]["fix"]
    code, report, out = doctor(plain, env={"POLY_PRIVATE_KEY": "0x1234nothex"})
    assert code == 1 and statuses(report)["private key"] == "fail"
    assert "1234nothex" not in out


def test_credentials_from_env_refused_or_partial(plain: SimThread) -> None:
    bad = {"POLY_API_KEY": "00000000-0000-4000-8000-000000000000"}
    bad |= {"POLY_API_SECRET": "A" * 43 + "=", "POLY_API_PASSPHRASE": "f" * 64}
    code, report, _ = doctor(plain, env=bad)
    assert code == 1 and statuses(report)["API credentials"] == "fail"
    assert "401" in by_name(report)["API credentials"]["detail"]
    code, report, _ = doctor(plain, env={"POLY_API_KEY": bad["POLY_API_KEY"]})
    assert code == 1 and statuses(report)["API credentials"] == "fail"
    assert "POLY_API_SECRET" in by_name(report)["API credentials"]["detail"]


def test_secrets_never_appear_in_the_output(
    plain: SimThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    # the key's API credentials, issued by the simulator through L1
    r = httpx.get(f"{plain.url}/auth/derive-api-key", headers=l1_headers(SigningKey(KEY), 137))
    creds = ApiCreds.decode(r.content)
    env = {
        "POLY_API_KEY": creds.api_key,
        "POLY_API_SECRET": creds.secret.reveal(),
        "POLY_API_PASSPHRASE": creds.passphrase.reveal(),
    }
    outputs = []
    for as_json in (True, False):
        code, report, out = doctor(plain, env=env, as_json=as_json)
        assert code == 0, out
        outputs.append(out)
    assert by_name(report := doctor(plain, env=env)[1])["API credentials"]["status"] == "pass"
    assert "from the environment" in by_name(report)["API credentials"]["detail"]
    # derived credentials are not printed either
    outputs.append(doctor(plain)[2])
    outputs.append(caplog.text)  # nor in any log line, at any level
    secret, passphrase = creds.secret.reveal(), creds.passphrase.reveal()
    planted = (KEY, KEY[2:], KEY[2:].upper(), secret, passphrase, creds.api_key)
    assert "balance-allowance" in caplog.text  # the L2 calls were logged, without secrets
    for out in outputs:
        for secret in planted:
            assert secret not in out


# -- operator errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--venue", "sim"], "simulator's URL"),
        (["--venue", "nowhere"], "nowhere"),
        (["--venue", "sim", "--url", "ftp://x"], "ftp://x"),
        (["--venue", "polymarket", "--url", "not a url"], "not a url"),
        (["--venue", "sim", "--url", "http://127.0.0.1:1", "--top", "0"], "--top"),
    ],
)
def test_operator_errors_exit_2_with_one_line(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(app, ["doctor", *args])
    assert res.exit_code == 2
    assert needle in res.output and len(res.output.strip().splitlines()) == 1


# -- pure checks -----------------------------------------------------------------------------------
def _sel(version: str | None, *, neg_risk: bool = False, fees: str = "") -> Selected:
    from polylab.errors import DiscoveryError
    from polylab.feed.discovery import market_from_gamma

    obj: dict[str, Any] = {
        "id": "9",
        "slug": "m",
        "conditionId": "0x" + "1" * 64,
        "clobTokenIds": '["11", "12"]',
        "negRisk": neg_risk,
    }
    if version is not None:
        obj["version"] = version
    if fees:
        obj |= json.loads(fees)
    (gm,) = decode_markets(json.dumps([obj]))
    try:
        return Selected(gm, market_from_gamma(gm))
    except DiscoveryError as exc:
        return Selected(gm, None, str(exc))


def test_domain_check_refuses_missing_or_unknown_version() -> None:
    for version in (None, "v9"):
        c = domain_check(_sel(version), 137, False)
        assert c.status == "fail" and "version" in c.detail
    assert domain_check(_sel("v1"), 137, False).status == "pass"
    neg = domain_check(_sel("v1", neg_risk=True), 137, True)
    assert "0xe2222d279d744050d28e00520010520000310F59" in neg.detail
    assert domain_check(_sel("v1", neg_risk=True), 137, False).status == "fail"  # disagree
    assert domain_check(_sel("v1"), 137, None).status == "fail"  # unknown to the CLOB


def test_fee_check_warns_on_fallback() -> None:
    enabled = '{"feesEnabled": true}'
    assert fee_check(_sel("v1", fees=enabled), None, 1000).status == "warn"
    from decimal import Decimal

    assert fee_check(_sel("v1", fees=enabled), (Decimal("0.03"), Decimal(1)), 0).status == "pass"
    assert fee_check(_sel("v1"), None, 0).detail.startswith("fee-free")


def test_skew_check_thresholds() -> None:
    assert skew_check(1000, 999.9, 1000.1).status == "pass"
    assert skew_check(1005, 1000.0, 1000.0).status == "warn"
    assert skew_check(1000, 1040.0, 1040.0).status == "fail"
    now = 1_795_000_000.0
    assert skew_check(int(now * 1000), now, now).status == "pass"  # an answer in ms
