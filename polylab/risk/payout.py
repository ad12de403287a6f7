"""Whether one share of every leg of an outcome group surely pays $1 at resolution.

A binary pair (YES + NO of one market) always does. A neg-risk group is the YES of every
market polylab knows of one event, and it pays $1 only if those markets are the **whole**
event: exactly one outcome of the event wins, and if the winner is a market polylab does not
hold, the set pays nothing. So before a set is valued at $1 (``pnl_at_payout``, a research
merge), the catalog must show

* every market of the event: the group has as many markets as the event lists at the source
  (Gamma ``/events`` embeds them all, including ones discovery had to skip, e.g. a placeholder
  without token ids); when the count is unknown (an old recording) the catalog's grouping is
  all there is to go on;
* no augmented event (Gamma ``negRiskAugmented``) and no "Other" / placeholder outcome
  (``negRiskOther``): outcomes can still be named out of the placeholders and "Other" changes
  meaning as they are, so no set of today's tradable markets pins the payout (the venue's
  documentation tells integrators to trade named outcomes only and leave those alone);
* every market tradable (active, not closed): a set whose leg cannot be traded is not one
  polylab can have bought in full, or unwind.

Units: none (facts about the catalog).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polylab.market import MarketCatalog, OutcomeGroup

__all__ = ["pays_one", "why_not_whole"]


def why_not_whole(group: OutcomeGroup, catalog: MarketCatalog) -> str:
    """Why ``group``'s complete set may not pay $1 ("" when it surely does)."""
    if group.kind != "negrisk":
        return ""
    if len(group.markets) < 2:
        return f"event {group.id}: one market is not a set"
    declared = 0
    for cid in group.markets:
        m = catalog.markets.get(cid)
        if m is None:
            return f"event {group.id}: market {cid} is not in the catalog"
        if not m.neg_risk or m.event_id != group.id:
            return f"event {group.id}: market {cid} is not one of its neg-risk markets"
        if m.neg_risk_other:
            return f"event {group.id}: market {cid} is a placeholder / 'Other' outcome"
        if m.neg_risk_augmented:
            return f"event {group.id} is augmented: outcomes can still be added"
        if not m.active:
            return f"event {group.id}: market {cid} is not tradable (closed or inactive)"
        declared = max(declared, m.event_markets)
    if declared and declared != len(group.markets):
        return (
            f"event {group.id}: lists {declared} markets, the set has {len(group.markets)} "
            "(a missing outcome may win)"
        )
    return ""


def pays_one(group: OutcomeGroup, catalog: MarketCatalog) -> bool:
    """True when a complete set of ``group`` surely pays $1 at resolution."""
    return not why_not_whole(group, catalog)
