"""polylab.ops: what keeps the headless runner observable in production.

* ``health``: named readiness checks (``Health``) and ready-made ones (feed, ledger, bus, age);
* ``metrics``: ``Metrics``, the Prometheus metrics on a registry of their own;
* ``http``: ``OpsServer``, one port serving ``/health`` and ``/metrics``;
* ``alerts`` / ``alert_rules``: Slack webhook alerts (``AlertSender``), deduplicated,
  rate-limited and sanitised, and the rules that fire them (``OpsAlerts``);
* ``sanitize``: strips secrets from outgoing text; ``probe``: the container's health check;
* ``service``: ``Ops``, the bundle the runner starts, feeds periodically and closes.

Nothing is imported here, so ``python -m polylab.ops.probe`` stays stdlib-fast.
"""
