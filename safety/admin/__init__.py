"""Admin for adverse events, DLT decisions, reporting clocks, the CTCAE term table and the committee's
review pages; importing this package registers every page. Every write calls ``safety.services``."""

from safety.admin import adverse_events, clocks, integrity, reviews, simulations, terms  # noqa: F401
