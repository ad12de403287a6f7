"""polylab.runner: the faces that run the engine (paper sessions now; the service later)."""

__all__: list[str] = []
