"""RPC probes for `ctrip status`: each endpoint on its own, concurrently, briefly,
through the same transport the passes use (no retries: a probe reports, it does not
insist). No URL ever reaches a label or an error message: URLs may carry API keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctrip_cli.chain.evm import EvmChain
    from ctrip_cli.config import ChainConfig, Settings
    from ctrip_cli.jobs import status as status_job


def endpoint_label(url: str, index: int) -> str:
    """`#1 host:port`, or `endpoint #1` when the URL may carry a secret."""
    from ctrip_cli.chain.evm import probe_label

    return probe_label(url, index)


def probe_all(
    chains: Mapping[str, ChainConfig],
    *,
    timeout_s: float,
    limits: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, list[status_job.Endpoint]]:
    """Probe every endpoint of `chains` at once; a dead one costs at most timeout_s.

    `limits` ({chain: {endpoint key: document}}) are the limits passes learnt; each
    probe reports those of its endpoint.
    """
    jobs = [
        (name, i, cfg)
        for name, cfg in chains.items()
        for i in range(1, len(cfg.rpc_urls) + 1)
    ]
    out: dict[str, list[status_job.Endpoint]] = {name: [] for name in chains}
    if not jobs:
        return out
    known = limits or {}
    with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
        results = pool.map(
            lambda j: _probe_one(j[2], j[1], timeout_s, known.get(j[0], {})), jobs
        )
        for (name, *_), endpoint in zip(jobs, results, strict=True):
            out[name].append(endpoint)
    return out


def probe(url: str, index: int, chain_id: int, timeout_s: float) -> status_job.Endpoint:
    """One endpoint given by URL (its label numbered `index`)."""
    from pydantic import SecretStr

    from ctrip_cli.config import ChainConfig, NativeConfig

    cfg = ChainConfig(
        name="probe",
        chain_id=chain_id,
        rpc_urls=[SecretStr(url)],
        native=NativeConfig(symbol="ETH", decimals=18),
    )
    (endpoint,) = _chain(cfg, {}).probe(timeout_s=timeout_s)
    label = endpoint_label(url, index)
    return _relabel(endpoint, label)


def _probe_one(
    cfg: ChainConfig, index: int, timeout_s: float, limits: Mapping[str, Any]
) -> status_job.Endpoint:
    url = cfg.rpc_urls[index - 1]
    single = cfg.model_copy(update={"rpc_urls": [url]})
    (endpoint,) = _chain(single, limits).probe(timeout_s=timeout_s)
    label = endpoint_label(url.get_secret_value(), index)
    return _relabel(endpoint, label)


def _chain(cfg: ChainConfig, limits: Mapping[str, Any], timeout_s: float = 10.0) -> Any:
    from ctrip_cli.chain.evm import EvmChain
    from ctrip_cli.chain.limits import EndpointLimits

    return EvmChain.open(
        cfg,
        limits={k: EndpointLimits.from_json(v) for k, v in limits.items()},
        attempts=1,
        timeout_s=timeout_s,
    )


def _relabel(endpoint: status_job.Endpoint, label: str) -> status_job.Endpoint:
    import dataclasses

    return dataclasses.replace(endpoint, label=label)


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
    from ctrip_cli.errors import ChainError
    from ctrip_cli.jobs import status as status_job

    chain = _chain(cfg, {}, timeout_s)
    try:
        wei = chain.balance(address)
        # The price a sweep reserves at (its max fee: 2 x base fee + tip on EIP-1559
        # chains, floored at the chain's minimums), not eth_gasPrice, which is lower:
        # the estimate must not promise a gas payer enough when the sweep needs more.
        price = chain.fees(eip1559=cfg.eip1559).max_fee_per_gas
        l1_fee = _l1_fee(chain, cfg, address, price)
    except ChainError as exc:
        return status_job.GasPayer(address, None, error=type(exc).__name__)
    finally:
        chain.close()
    return status_job.GasPayer(
        address,
        wei,
        symbol=cfg.native.symbol,
        decimals=cfg.native.decimals,
        gas_price_wei=price,
        l1_fee_wei=l1_fee,
    )


def _l1_fee(chain: EvmChain, cfg: ChainConfig, address: str, price: int) -> int | None:
    """The L1 data fee of one token sweep on a rollup (None elsewhere)."""
    from ctrip_cli.jobs.sweep import fees

    if cfg.fee_model == "op-stack":
        return fees.token_sweep_l1_fee_wei(chain.l1_fee_params(), cfg.chain_id)
    if cfg.fee_model == "arbitrum":  # the L1 part of a plain transfer's gas
        l1_gas = chain.estimate_gas(sender=address, to=address) - 21_000
        return max(l1_gas, 0) * fees.ARBITRUM_L1_TXS_PER_TOKEN_SWEEP * price
    return None
