"""syncd: a two-way sync daemon for customer records across business apps."""

__version__ = "0.1.0"
