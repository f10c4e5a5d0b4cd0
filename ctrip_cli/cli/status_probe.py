"""RPC probes for `ctrip status`: each endpoint on its own, concurrently, briefly.

Raw JSON-RPC over httpx (no retries: a probe reports, it does not insist). No URL ever
reaches a label or an error message: URLs may carry API keys.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

    from ctrip_cli.config import ChainConfig, Settings
    from ctrip_cli.jobs import status as status_job


def endpoint_label(url: str, index: int) -> str:
    """`#1 host:port`, or `endpoint #1` when the URL may carry a secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return f"endpoint #{index}"
    secretive = parts.username or parts.password or parts.query or parts.fragment
    if secretive or parts.path not in ("", "/") or not host:
        return f"endpoint #{index}"
    return f"#{index} {host}" + (f":{port}" if port else "")


def probe_all(
    chains: Mapping[str, ChainConfig], *, timeout_s: float
) -> dict[str, list[status_job.Endpoint]]:
    """Probe every endpoint of `chains` at once; a dead one costs at most timeout_s."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [
        (name, i, url.get_secret_value(), cfg.chain_id)
        for name, cfg in chains.items()
        for i, url in enumerate(cfg.rpc_urls, start=1)
    ]
    out: dict[str, list[status_job.Endpoint]] = {name: [] for name in chains}
    if not jobs:
        return out
    with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
        results = pool.map(lambda j: probe(j[2], j[1], j[3], timeout_s), jobs)
        for (name, *_), endpoint in zip(jobs, results, strict=True):
            out[name].append(endpoint)
    return out


def probe(url: str, index: int, chain_id: int, timeout_s: float) -> status_job.Endpoint:
    """One endpoint: its chain id and latest block; errors never show the URL."""
    import httpx

    from ctrip_cli.jobs import status as status_job

    label = endpoint_label(url, index)
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
            actual = _hex(_rpc(http, url, "eth_chainId"))
            started = time.monotonic()
            block = _rpc(http, url, "eth_getBlockByNumber", "latest", False)
            latency_ms = round((time.monotonic() - started) * 1000)
            head, stamp = _hex(_get(block, "number")), _hex(_get(block, "timestamp"))
    except _ProbeError as exc:
        return status_job.Endpoint(label, ok=False, error=str(exc))
    except httpx.HTTPError as exc:
        return status_job.Endpoint(label, ok=False, error=type(exc).__name__)
    if actual != chain_id:
        error = f"serves chain id {actual}, chains.yaml says {chain_id}"
        return status_job.Endpoint(label, ok=False, error=error)
    return status_job.Endpoint(
        label, ok=True, head=head, head_timestamp=stamp, latency_ms=latency_ms
    )


class _ProbeError(Exception):
    pass


def _rpc(http: httpx.Client, url: str, method: str, *params: Any) -> Any:
    resp = http.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    if resp.status_code != 200:
        raise _ProbeError(f"HTTP {resp.status_code}")
    try:
        body = resp.json()
    except ValueError:
        raise _ProbeError("not a JSON-RPC answer") from None
    if not isinstance(body, dict) or ("result" not in body and "error" not in body):
        raise _ProbeError("not a JSON-RPC answer")
    if body.get("error") is not None:
        error = body["error"]
        code = error.get("code") if isinstance(error, dict) else None
        raise _ProbeError(f"JSON-RPC error {code}")
    return body["result"]


def _get(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict):
        raise _ProbeError("not a JSON-RPC answer")
    return obj.get(key)


def _hex(value: Any) -> int:
    """A JSON-RPC quantity (`0x1a`) as an int."""
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise _ProbeError("not a JSON-RPC answer")


def gas_payers(
    settings: Settings,
    chains: Mapping[str, ChainConfig],
    endpoints: Mapping[str, Sequence[status_job.Endpoint]],
) -> dict[str, status_job.GasPayer]:
    """The gas payer's balance on chains with tokens, when key material is configured."""
    if settings.mnemonic is None:
        return {}
    from ctrip_cli.chain.signer import KeyRing
    from ctrip_cli.errors import CtripError

    out = {}
    for name, cfg in chains.items():
        if not cfg.tokens or not any(e.ok for e in endpoints.get(name, ())):
            continue
        try:
            keys = KeyRing.for_chain(settings.mnemonic, cfg)
            address = keys.address(settings.sweep.gas_payer_path)
        except CtripError:
            continue
        out[name] = _balance(cfg, address, settings.status.probe_timeout_s)
    return out


def _balance(cfg: ChainConfig, address: str, timeout_s: float) -> status_job.GasPayer:
    import httpx

    from ctrip_cli.jobs import status as status_job

    errors = []
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
        for url in (u.get_secret_value() for u in cfg.rpc_urls):
            try:
                wei = _hex(_rpc(http, url, "eth_getBalance", address, "latest"))
                price = _hex(_rpc(http, url, "eth_gasPrice"))
            except (_ProbeError, httpx.HTTPError) as exc:
                errors.append(type(exc).__name__)
                continue
            return status_job.GasPayer(
                address,
                wei,
                symbol=cfg.native.symbol,
                decimals=cfg.native.decimals,
                gas_price_wei=price,
            )
    return status_job.GasPayer(address, None, error=", ".join(errors))
