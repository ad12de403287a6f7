"""polylab.dashboard: the operator's web page on the runner's bus.

``app.create_app`` builds the Starlette app (login with a one-time code, JWT session cookie,
``/api/state``, the ``/events`` stream, controls on ``poly:control``); ``auth`` holds codes,
tokens, lockout and revocation in Redis; ``hub`` shares one bus subscription among all pages;
``cli`` is ``polylab dashboard serve|otp``.
"""

__all__: list[str] = []
