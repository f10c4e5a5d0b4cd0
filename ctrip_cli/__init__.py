"""ctrip: a self-hosted crypto payment gateway run as one-shot, cron-driven passes."""

__version__ = "0.1.0"
