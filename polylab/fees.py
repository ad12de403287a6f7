"""Taker fees: ``fee = shares × rate × (p × (1 − p))^exponent``, makers pay nothing.

Rates are held as integer micros (0.07 → 70_000) so fees stay exact; the venue rounds a fee to
5 decimals (0.00001 USDC). Estimates round *up* to that unit: a fee we pay is never understated.
"""

from __future__ import annotations

import msgspec

from polylab.money import MICROS, decimal_to_micros

__all__ = ["FEE_UNIT_MICROS", "FeeModel", "fee_micros", "round_fee_up"]

FEE_UNIT_MICROS = 10
"""The smallest fee the venue charges: 0.00001 USDC = 10 micros."""


def round_fee_up(exact_micros_num: int, denom: int) -> int:
    """``ceil(num / denom)`` micros, then up to a whole ``FEE_UNIT_MICROS``."""
    m = -(-exact_micros_num // denom)
    return -(-m // FEE_UNIT_MICROS) * FEE_UNIT_MICROS


def fee_micros(size_micros: int, price_micros: int, rate_micros: int, exponent: int = 1) -> int:
    """Taker fee in micros for ``size`` shares filled at ``price``.

    With exponent 1: size × rate × p(1−p) = s·r·p·(1e6−p) / 1e18 micros (all inputs micros).
    """
    if not rate_micros or not size_micros:
        return 0
    pq = price_micros * (MICROS - price_micros)
    num = size_micros * rate_micros * pq**exponent
    return round_fee_up(num, MICROS ** (1 + 2 * exponent))


class FeeModel(msgspec.Struct, frozen=True):
    """A market's taker fee schedule in exact units.

    ``rate_micros``: fee rate × 1e6 (0.07 → 70_000). ``exponent``: power of p(1−p) (1 since
    2026). ``flat_micros_per_share``: a fallback flat fee per share of $1 payout, used only for
    markets that publish no schedule (``SUMTO100_FEE_RATE``), in micros per share.
    """

    rate_micros: int = 0
    exponent: int = 1
    flat_micros_per_share: int = 0

    @classmethod
    def from_rate(cls, rate: str, exponent: str | int = 1) -> FeeModel:
        """From the venue's strings ("0.07", "1")."""
        return cls(rate_micros=decimal_to_micros(rate), exponent=int(exponent))

    def fee(self, size_micros: int, price_micros: int) -> int:
        """Fee in micros for one fill."""
        if self.flat_micros_per_share:
            return round_fee_up(size_micros * self.flat_micros_per_share, MICROS)
        return fee_micros(size_micros, price_micros, self.rate_micros, self.exponent)
