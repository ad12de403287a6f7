"""polylab: research-to-production workbench for Polymarket CLOB trading."""

__version__ = "0.1.0"
