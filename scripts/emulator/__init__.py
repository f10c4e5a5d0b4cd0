"""A provider emulator for tests and benchmarks: a JSON-RPC proxy in front of anvil
that answers as geth, hosted plans, public nodes and balancers do (scripts.emulator.
limits names each source), and counts calls, requests and bytes per method."""

from scripts.emulator.limits import PRESETS, Limits, preset
from scripts.emulator.server import RESET_PATH, STATS_PATH, Emulator

__all__ = ["PRESETS", "RESET_PATH", "STATS_PATH", "Emulator", "Limits", "preset"]
