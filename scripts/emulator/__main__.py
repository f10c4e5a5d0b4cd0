"""`python -m scripts.emulator --upstream URL --profile P --port N`: run the emulator
until interrupted. `--set name=value` overrides one limit (repeatable); GET
/_emulator/stats answers the counters, GET /_emulator/reset clears them."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
from typing import Any

from scripts.emulator.limits import PRESETS, Limits, preset
from scripts.emulator.server import Emulator


def _value(field: dataclasses.Field[Any], text: str) -> Any:
    """Parse `text` for a Limits field by its default's type."""
    default = field.default
    if text.lower() in ("none", "null"):
        return None
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(default, frozenset):
        return frozenset(x for x in text.split(",") if x)
    if isinstance(default, float) or field.name == "latency_s":
        return float(text)
    if isinstance(default, str):
        return text
    return int(text)


def overrides(pairs: list[str]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(Limits)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in fields:
            raise SystemExit(
                f"--set {pair!r}: expected name=value, name one of {', '.join(fields)}"
            )
        out[name] = _value(fields[name], text)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="JSON-RPC URL, e.g. anvil's")
    parser.add_argument("--profile", default="unlimited", choices=sorted(PRESETS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-s", type=float, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    changes = overrides(args.set)
    if args.latency_s is not None:
        changes["latency_s"] = args.latency_s
    emu = Emulator(
        args.upstream, preset(args.profile), host=args.host, port=args.port, **changes
    )
    emu.profile = args.profile
    emu.start()
    print(
        json.dumps(
            {
                "url": emu.url,
                "profile": args.profile,
                "limits": dataclasses.asdict(emu.limits),
            },
            default=sorted,
        ),
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    emu.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
