"""polylab: research-to-production workbench for Polymarket CLOB trading."""

from polylab.native import guard as _guard

__version__ = "0.1.0"

_guard()  # the compiled hot path loads only when built from these very sources (polylab.native)
