"""One module per pass: `run(session, chain, *, now, settings) -> XResult`."""
