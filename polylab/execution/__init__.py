"""Execution: order signing (V1/V2), CLOB authentication, executors."""

__all__: list[str] = []
