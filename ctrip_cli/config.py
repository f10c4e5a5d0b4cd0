"""Typed settings: environment (and .env) plus chains.yaml, validated once.

Every problem is reported with its location, e.g.
`chains.bsc.tokens.USDT.address: not a checksummed address`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from Crypto.Hash import keccak
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ctrip_cli import config_yaml, keypaths, redact, urls
from ctrip_cli.errors import ConfigError

log = logging.getLogger("ctrip")
DEV_CHAIN_IDS = frozenset({31337, 1337})
DEFAULT_GAS_PAYER_PATH = "m/44'/60'/1'/0/0"
# Upper bound of durations: far enough for any setting, near enough that `now + it`
# stays a valid datetime.
MAX_SECONDS = 10 * 365 * 86_400
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9.]{1,16}$")


def to_checksum(address: str) -> str:
    """EIP-55 checksum form of a 20-byte hex address (no validation of the input case)."""
    lower = address.lower().removeprefix("0x")
    digest = keccak.new(digest_bits=256, data=lower.encode()).hexdigest()
    return "0x" + "".join(
        c.upper() if int(h, 16) >= 8 else c
        for c, h in zip(lower, digest[:40], strict=True)
    )


def checked_address(value: object) -> str:
    """Return `value` if it is an EIP-55 checksummed address, else raise ValueError."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError("not an address (expected 0x followed by 40 hex digits)")
    if value != to_checksum(value):
        raise ValueError(f"not a checksummed address; use {to_checksum(value)}")
    return value


_NUMBERS = (int, float, int | None, float | None)


class _Model(BaseModel):
    # No inf or NaN: `block_time_s: inf` or an infinite timeout would pass `gt=0`.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        # YAML's `true` would otherwise be the number 1 (`confirmations: true`).
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(v, bool) and field is not None and field.annotation in _NUMBERS:
            raise ValueError("must be a number, not true or false")
        return v


class NativeConfig(_Model):
    symbol: str
    decimals: int = Field(default=18, ge=0, le=36)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if not _SYMBOL.match(v):
            raise ValueError("not a token symbol (1-16 letters, digits or dots)")
        return v


class TokenConfig(_Model):
    address: str
    decimals: int = Field(ge=0, le=36)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return checked_address(v)


class ChainConfig(_Model):
    """One chain of chains.yaml."""

    name: str
    # EIP-2294 bounds chain ids to floor(MAX_UINT64 / 2) - 36.
    chain_id: int = Field(gt=0, le=2**63 - 37)
    rpc_urls: list[SecretStr] = Field(min_length=1)
    confirmations: int = Field(default=12, ge=0, le=10_000)
    poa: bool = False
    native: NativeConfig
    tokens: dict[str, TokenConfig] = Field(default_factory=dict)
    treasury: str | None = None
    max_block_range: int = Field(default=2_000, ge=1, le=100_000)
    start_block: int | None = Field(default=None, ge=0, le=2**63 - 1)
    reorg_depth_blocks: int = Field(default=64, ge=1, le=10_000)
    block_time_s: float = Field(default=12.0, gt=0, le=86_400)
    eip1559: bool = True
    # How native transfers are read: whole blocks' receipts (they also carry every
    # token Transfer log), or full blocks; `auto` measures both and takes the cheaper.
    native_read: Literal["auto", "receipts", "blocks"] = "auto"
    # Native coin forwarded by contracts (internal calls): `auto` reads block traces
    # where the endpoint answers them, `traces` requires them, `reconcile` and `off`
    # never read them (`ctrip reconcile` finds such money from balances).
    native_internal: Literal["auto", "traces", "reconcile", "off"] = "auto"
    # Calls a second, counted per JSON-RPC call (providers bill per call).
    rpc_max_calls_per_s: int | None = Field(default=None, ge=1, le=1_000_000)
    # Seconds a pass may spend in all waiting out rate limits (429, -32005) before it
    # ends with exit 1; keep it below the cron interval.
    rpc_rate_wait_s: float = Field(default=30.0, gt=0, le=3_600)
    # Seconds one JSON-RPC answer may take, whole (a slow archive node may need more).
    rpc_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # `status --check` threshold; default max(min_lag_blocks, max_lag_s / block_time_s).
    max_lag_blocks: int | None = Field(default=None, ge=1, le=10**9)
    # How the chain charges a transaction: `ethereum` (gas x price), `op-stack` (plus
    # an L1 data fee from the L1Block predeploy), `arbitrum` (the L1 cost is gas too,
    # so every transaction's gas is estimated).
    fee_model: Literal["ethereum", "op-stack", "arbitrum"] = "ethereum"
    # Floors the chain's nodes enforce (Polygon: a minimum tip; BNB Chain: a minimum
    # gas price); fees never go below them, whatever the node suggests.
    min_priority_fee_wei: int | None = Field(default=None, ge=0, le=10**24)
    min_gas_price_wei: int | None = Field(default=None, ge=0, le=10**24)
    # Where `reconcile` finds Multicall3 (its canonical address on most chains,
    # github.com/mds1/multicall3); null reads every balance with its own call.
    multicall3: str | None = "0xcA11bde05977b3631167028862bE2a173976CA11"

    @field_validator("native_internal", mode="before")
    @classmethod
    def _native_internal(cls, v: Any) -> Any:
        # YAML 1.1 (PyYAML) reads a bare `off` as the boolean false.
        return "off" if v is False else v

    @field_validator("treasury", "multicall3")
    @classmethod
    def _optional_address(cls, v: str | None) -> str | None:
        return None if v is None else checked_address(v)

    @field_validator("rpc_urls")
    @classmethod
    def _urls(cls, v: list[SecretStr]) -> list[SecretStr]:
        for url in v:
            if not re.match(r"^(https?|wss?)://", url.get_secret_value()):
                raise ValueError(
                    "every RPC URL must start with http://, https:// or ws://"
                )
        return v

    @model_validator(mode="after")
    def _symbols_unique(self) -> ChainConfig:
        for symbol in self.tokens:
            if not _SYMBOL.match(symbol):
                raise ValueError(f"tokens.{symbol}: not a token symbol")
            if symbol == self.native.symbol:
                raise ValueError(f"tokens.{symbol}: clashes with the native symbol")
        return self

    @property
    def is_dev(self) -> bool:
        return self.chain_id in DEV_CHAIN_IDS

    def asset(self, symbol: str) -> tuple[str | None, int]:
        """(token address or None for the native coin, decimals) of an asset symbol.

        Raises:
            ConfigError: the chain has no such asset.
        """
        if symbol == self.native.symbol:
            return None, self.native.decimals
        token = self.tokens.get(symbol)
        if token is None:
            known = ", ".join([self.native.symbol, *self.tokens]) or "none"
            raise ConfigError(
                f"--asset {symbol!r}: chain {self.name!r} has no such asset (known: {known})"
            )
        return token.address, token.decimals


class ScanSettings(_Model):
    underpayment_tolerance_bps: int = Field(default=0, ge=0, le=10_000)
    address_chunk: int = Field(default=1_000, ge=1, le=10_000)
    # More recipient filters than this per range: fetch the token contracts' Transfer
    # logs unfiltered and match locally (cheaper than ceil(n/address_chunk) queries).
    max_filter_chunks: int = Field(default=4, ge=1, le=10_000)
    # Expired payments stay watched this long, so late funds are still detected.
    late_window_s: int = Field(default=7 * 86_400, ge=0, le=MAX_SECONDS)
    # Blocks per committed batch (None: the chain's max_block_range, which also caps
    # it). Fewer, larger commits measured faster (scripts/bench/README.md).
    batch_blocks: int | None = Field(default=None, ge=1, le=100_000)


class SweepSettings(_Model):
    max_fee_share_bps: int = Field(default=1_000, ge=0, le=10_000)
    stuck_after_s: int = Field(default=180, ge=1, le=MAX_SECONDS)
    gas_payer_path: str = DEFAULT_GAS_PAYER_PATH

    @field_validator("gas_payer_path")
    @classmethod
    def _gas_payer_path(cls, v: str) -> str:
        problem = keypaths.gas_payer_problem(v)
        if problem is not None:
            raise ValueError(f"{v!r}: {problem}")
        return v

    # Replacement fee bump; nodes demand >= +10% on both fees, so +12.5% by default.
    fee_bump_bps: int = Field(default=1_250, ge=1_000, le=100_000)
    # Money arriving after a payment's sweep is swept again only from this share of
    # the payment's amount (1% by default): less is not worth a transaction, nor, for
    # a token, the gas payer's top-up.
    min_late_sweep_bps: int = Field(default=100, ge=0, le=10_000)


class WebhookSettings(_Model):
    default_url: str | None = None
    secrets: list[SecretStr] = Field(default_factory=list)
    allow_private: bool = False
    require_https: bool = True
    timeout_s: float = Field(default=10.0, gt=0, le=3_600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=3_600)
    max_in_flight: int = Field(default=64, ge=1, le=10_000)
    per_endpoint: int = Field(default=8, ge=1, le=10_000)
    lease_s: int = Field(default=120, ge=1, le=MAX_SECONDS)
    # Delay after failed attempt 1, 2, ...; jittered ±15 %. 1 + len() attempts in all.
    retry_ladder_s: tuple[float, ...] = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)


class StatusSettings(_Model):
    """Health thresholds of `status --check` and where passes publish metrics."""

    interval_s: int = Field(default=60, ge=1, le=MAX_SECONDS)
    stale_factor: int = Field(default=5, ge=1, le=1_000)
    max_lag_s: int = Field(default=300, ge=1, le=MAX_SECONDS)
    min_lag_blocks: int = Field(default=50, ge=1, le=10**9)
    sweep_stuck_s: int = Field(default=900, ge=1, le=MAX_SECONDS)
    webhook_max_due_s: int = Field(default=900, ge=1, le=MAX_SECONDS)
    probe_timeout_s: float = Field(default=3.0, gt=0, le=3_600)
    metrics_textfile: Path | None = None
    metrics_pushgateway: SecretStr | None = None


class Settings(_Model):
    """Everything a command may need, built once by the CLI's root callback."""

    database_url: SecretStr
    chains_file: Path | None
    chains: dict[str, ChainConfig]
    mnemonic: SecretStr | None = None
    default_expires_in_s: int = Field(default=1_800, ge=1, le=365 * 86_400)
    scan: ScanSettings = ScanSettings()
    sweep: SweepSettings = SweepSettings()
    webhooks: WebhookSettings = WebhookSettings()
    status: StatusSettings = StatusSettings()

    def chain(self, name: str) -> ChainConfig:
        """The named chain.

        Raises:
            ConfigError: no such chain in chains.yaml.
        """
        if name not in self.chains:
            known = ", ".join(sorted(self.chains)) or "none"
            where = self.chains_file or "chains.yaml"
            raise ConfigError(
                f"--chain {name!r}: not in {where} (known chains: {known})"
            )
        return self.chains[name]


def _interpolate(value: Any, env: Mapping[str, str], loc: str) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{loc}: environment variable ${{{name}}} is not set")

        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [_interpolate(v, env, f"{loc}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{loc}.{k}") for k, v in value.items()}
    return value


def _located(exc: ValidationError, prefix: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{loc}: {msg}")
    return problems


def _read_chains_doc(path: Path | None) -> dict[str, Any]:
    try:
        if path is None:
            data = (
                resources.files("ctrip_cli")
                .joinpath("default_chains.yaml")
                .read_bytes()
            )
        else:
            data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read chains file ({exc.strerror})") from None
    text = _utf8(data, f"{path or 'chains.yaml'}")
    try:
        doc = config_yaml.load(text)
    except yaml.YAMLError as exc:
        # Only the position and the parser's complaint: the offending line itself may
        # hold a literal RPC URL with an API key.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(
            f"{path or 'chains.yaml'}: not valid YAML ({where}{problem})"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("chains"), dict):
        raise ConfigError(
            f"chains: missing; {path or 'chains.yaml'} needs a top-level `chains:` "
            "mapping"
        )
    return doc


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def _chain(name: Any, raw: Any, env: Mapping[str, str]) -> ChainConfig:
    loc = f"chains.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{loc}: expected a mapping of chain settings")
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9_-]{0,31}$", name):
        raise ConfigError(f"{loc}: chain names are lowercase letters, digits, - and _")
    try:
        return ChainConfig(name=name, **_interpolate(raw, env, loc))
    except ValidationError as exc:
        raise ConfigError(problems=_located(exc, loc)) from None


def load_chains(path: Path | None, env: Mapping[str, str]) -> dict[str, ChainConfig]:
    """Parse and validate a chains.yaml document (the built-in one when `path` is None).

    Raises:
        ConfigError: the file is missing, is not YAML, or has invalid values.
    """
    doc = _read_chains_doc(path)
    problems: list[str] = []
    chains: dict[str, ChainConfig] = {}
    for name, raw in doc["chains"].items():
        try:
            chains[str(name)] = _chain(name, raw, env)
        except ConfigError as exc:
            problems.extend(exc.problems or [str(exc)])
    if problems:
        raise ConfigError(problems=problems)
    return chains


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _mnemonic(env: Mapping[str, str]) -> SecretStr | None:
    if env.get("CTRIP_MNEMONIC"):
        words, source = env["CTRIP_MNEMONIC"], "CTRIP_MNEMONIC"
    elif env.get("CTRIP_MNEMONIC_FILE"):
        file = Path(env["CTRIP_MNEMONIC_FILE"])
        words, source = _read_mnemonic_file(file), f"CTRIP_MNEMONIC_FILE {file}"
    else:
        return None
    words = " ".join(words.split())
    if len(words.split()) not in (12, 15, 18, 21, 24):
        raise ConfigError(f"{source}: expected 12, 15, 18, 21 or 24 words")
    return SecretStr(words)


# 24 words of at most 8 letters and their spaces fit in 216 bytes.
MAX_MNEMONIC_FILE_BYTES = 4_096


def _read_mnemonic_file(file: Path) -> str:
    try:
        with file.open("rb") as f:
            data = f.read(MAX_MNEMONIC_FILE_BYTES + 1)
            mode, gid = (st := os.fstat(f.fileno())).st_mode, st.st_gid
    except OSError as exc:
        raise ConfigError(
            f"CTRIP_MNEMONIC_FILE: cannot read {file} ({exc.strerror})"
        ) from None
    if len(data) > MAX_MNEMONIC_FILE_BYTES:
        raise ConfigError(
            f"CTRIP_MNEMONIC_FILE: {file} is larger than a mnemonic "
            f"({MAX_MNEMONIC_FILE_BYTES:,} bytes at most)"
        )
    # Group-readable is fine when the group is this process's own: Kubernetes makes a
    # secret file 0440 with the pod's fsGroup whatever defaultMode says
    # (kubernetes/kubernetes#57923).
    if mode & 0o004 or (mode & 0o040 and gid != os.getegid()):
        log.warning(
            "CTRIP_MNEMONIC_FILE %s is readable by %s (mode %03o); "
            "`chmod 600` it so only the ctrip user can read the keys",
            file,
            "others" if mode & 0o004 else "its group",
            mode & 0o777,
        )
    return _utf8(data, f"CTRIP_MNEMONIC_FILE {file}")


# ASCII digits only: int() and float() also take `１２`, `1_000` and `inf`.
_WHOLE = re.compile(r"^[+-]?[0-9]{1,18}$", re.ASCII)
_ASCII_SPACE = " \t\r\n"
_DECIMAL = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9})?$", re.ASCII)


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _checked_env(env, name, _WHOLE, "a whole number")
    return default if raw is None else int(raw)


def _seconds_env(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _checked_env(env, name, _DECIMAL, "a number of seconds (e.g. 2.5)")
    return default if raw is None else float(raw)


def _checked_env(
    env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str
) -> str | None:
    """The variable's value if set and it matches `pattern`; None if unset or empty."""
    raw = env.get(name)
    if raw in (None, ""):
        return None
    if not pattern.match(raw.strip(_ASCII_SPACE)):
        raise ConfigError(f"{name}: {raw!r} is not {what}")
    return raw


def _webhooks(env: Mapping[str, str]) -> WebhookSettings:
    secrets = [s for s in re.split(r"[\s,]+", env.get("CTRIP_WEBHOOK_SECRET", "")) if s]
    for i, secret in enumerate(secrets):
        if not secret.startswith("whsec_") or len(secret) < 10:
            raise ConfigError(
                f"CTRIP_WEBHOOK_SECRET[{i}]: expected whsec_ followed by base64 bytes"
            )
    url = env.get("CTRIP_WEBHOOK_URL") or None
    problem = None if url is None else urls.webhook_url_problem(url)
    if problem is not None:
        shown = redact.redact_url(url)
        raise ConfigError(f"CTRIP_WEBHOOK_URL: {shown!r}: {problem}")
    return WebhookSettings(
        default_url=url,
        secrets=[SecretStr(s) for s in secrets],
        allow_private=_truthy(env.get("CTRIP_WEBHOOK_ALLOW_PRIVATE")),
        require_https=not _truthy(env.get("CTRIP_WEBHOOK_ALLOW_HTTP")),
    )


def _status(env: Mapping[str, str]) -> StatusSettings:
    probe_timeout_s = _seconds_env(env, "CTRIP_STATUS_PROBE_TIMEOUT_S", 3.0)
    textfile = env.get("CTRIP_METRICS_TEXTFILE")
    gateway = env.get("CTRIP_METRICS_PUSHGATEWAY")
    return StatusSettings(
        interval_s=_int_env(env, "CTRIP_STATUS_INTERVAL_S", 60),
        stale_factor=_int_env(env, "CTRIP_STATUS_STALE_FACTOR", 5),
        max_lag_s=_int_env(env, "CTRIP_STATUS_MAX_LAG_S", 300),
        min_lag_blocks=_int_env(env, "CTRIP_STATUS_MIN_LAG_BLOCKS", 50),
        sweep_stuck_s=_int_env(env, "CTRIP_STATUS_SWEEP_STUCK_S", 900),
        webhook_max_due_s=_int_env(env, "CTRIP_STATUS_WEBHOOK_MAX_DUE_S", 900),
        probe_timeout_s=probe_timeout_s,
        metrics_textfile=Path(textfile) if textfile else None,
        metrics_pushgateway=SecretStr(gateway) if gateway else None,
    )


def default_database_url(cwd: Path | None = None) -> str:
    return f"sqlite:///{(cwd or Path.cwd()) / 'ctrip.db'}"


def load_settings(
    env: Mapping[str, str] | None = None, chains_file: Path | None = None
) -> Settings:
    """Build Settings from the environment and chains.yaml.

    Without `--chains` or CTRIP_CHAINS_FILE, ./chains.yaml is used when present and the
    built-in copy of the shipped file otherwise.

    Raises:
        ConfigError: any invalid value, all of them listed with their locations.
    """
    env = os.environ if env is None else env
    if chains_file is None and env.get("CTRIP_CHAINS_FILE"):
        chains_file = Path(env["CTRIP_CHAINS_FILE"])
    if chains_file is None and Path("chains.yaml").is_file():
        chains_file = Path("chains.yaml")
    chains = load_chains(chains_file, env)
    try:
        return Settings(
            database_url=SecretStr(
                env.get("CTRIP_DATABASE_URL") or default_database_url()
            ),
            chains_file=chains_file,
            chains=chains,
            mnemonic=_mnemonic(env),
            default_expires_in_s=_int_env(env, "CTRIP_DEFAULT_EXPIRES_IN_S", 1_800),
            scan=ScanSettings(
                underpayment_tolerance_bps=_int_env(
                    env, "CTRIP_UNDERPAYMENT_TOLERANCE_BPS", 0
                )
            ),
            sweep=SweepSettings(
                gas_payer_path=env.get("CTRIP_GAS_PAYER_PATH")
                or DEFAULT_GAS_PAYER_PATH,
                max_fee_share_bps=_int_env(env, "CTRIP_SWEEP_MAX_FEE_SHARE_BPS", 1_000),
                stuck_after_s=_int_env(env, "CTRIP_SWEEP_STUCK_AFTER_S", 180),
                fee_bump_bps=_int_env(env, "CTRIP_SWEEP_FEE_BUMP_BPS", 1_250),
                min_late_sweep_bps=_int_env(env, "CTRIP_SWEEP_MIN_LATE_SWEEP_BPS", 100),
            ),
            webhooks=_webhooks(env),
            status=_status(env),
        )
    except ValidationError as exc:
        raise ConfigError(problems=[_env_named(p) for p in _located(exc, "")]) from None


# Settings fields read from one environment variable: errors name the variable.
_ENV_NAMES = {
    "default_expires_in_s": "CTRIP_DEFAULT_EXPIRES_IN_S",
    "underpayment_tolerance_bps": "CTRIP_UNDERPAYMENT_TOLERANCE_BPS",
    "max_fee_share_bps": "CTRIP_SWEEP_MAX_FEE_SHARE_BPS",
    "stuck_after_s": "CTRIP_SWEEP_STUCK_AFTER_S",
    "fee_bump_bps": "CTRIP_SWEEP_FEE_BUMP_BPS",
    "min_late_sweep_bps": "CTRIP_SWEEP_MIN_LATE_SWEEP_BPS",
    "interval_s": "CTRIP_STATUS_INTERVAL_S",
    "stale_factor": "CTRIP_STATUS_STALE_FACTOR",
    "max_lag_s": "CTRIP_STATUS_MAX_LAG_S",
    "min_lag_blocks": "CTRIP_STATUS_MIN_LAG_BLOCKS",
    "sweep_stuck_s": "CTRIP_STATUS_SWEEP_STUCK_S",
    "webhook_max_due_s": "CTRIP_STATUS_WEBHOOK_MAX_DUE_S",
    "probe_timeout_s": "CTRIP_STATUS_PROBE_TIMEOUT_S",
    "gas_payer_path": "CTRIP_GAS_PAYER_PATH",
}


def _env_named(problem: str) -> str:
    field, sep, rest = problem.partition(":")
    name = _ENV_NAMES.get(field)
    return f"{name} ({field}){sep}{rest}" if name else problem
