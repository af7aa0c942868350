"""hebb-gym agents: Hebbian, static and LSTM policies with the SB3 ``predict`` interface, and the ES trainer."""

__all__: list[str] = []
