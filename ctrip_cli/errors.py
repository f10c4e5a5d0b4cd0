"""The exception tree every layer raises and the CLI's single error edge maps to exit codes.

CtripError                      exit 1 unless stated
├── ConfigError                 exit 2: bad configuration or usage
│   └── InputError              exit 2: a bad command-line value
├── ChainError
│   ├── RpcUnavailableError     timeouts, refused connections, 5xx, 429
│   ├── RpcRejectedError        the node answered with an error
│   ├── ChainIdMismatchError    the endpoint serves another chain
│   ├── TracesUnavailableError  native_internal: traces, but no trace method answers
│   ├── ReorgTooDeepError       a fork deeper than the kept window
│   ├── NonceConflictError      the node's nonce disagrees with ours
│   └── InsufficientFundsError  the gas payer cannot pay
├── DatabaseError               the database is down or refused a statement
└── WebhookError
"""

from __future__ import annotations

from typing import ClassVar


class CtripError(Exception):
    """ctrip could not complete the operation."""

    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())


class ConfigError(CtripError):
    """The configuration is invalid."""

    exit_code = 2

    def __init__(
        self, message: str | None = None, *, problems: list[str] | None = None
    ):
        self.problems = problems or []
        if message is None and self.problems:
            message = "; ".join(self.problems)
        super().__init__(message)


class InputError(ConfigError):
    """A command-line value is invalid."""


class ChainError(CtripError):
    """The chain could not be read or written."""


class RpcUnavailableError(ChainError):
    """No RPC endpoint of the chain answered; check rpc_urls and the node's health."""

    retryable = True


class RpcRejectedError(ChainError):
    """The node rejected the request."""


class ChainIdMismatchError(ChainError):
    """The RPC endpoint serves a different chain than chains.yaml says."""


class TracesUnavailableError(ChainError):
    """The chain's endpoint answers no trace method, and native_internal is traces."""


class ReorgTooDeepError(ChainError):
    """A reorg is deeper than the window of kept block hashes."""

    def __init__(self, *, block: int, depth: int, safe: int, chain: str = "C") -> None:
        self.block, self.depth, self.safe = block, depth, safe
        super().__init__(
            f"Reorg at #{block:,} deeper than {depth} blocks; raise reorg_depth_blocks "
            f"or rescan with `ctrip scan --chain {chain} --from-block {safe}`"
        )


class NonceConflictError(ChainError):
    """The node's nonce for an account disagrees with the transactions ctrip recorded."""


class InsufficientFundsError(ChainError):
    """An account lacks the native coin to pay for a transaction."""


class DatabaseError(CtripError):
    """The database is unreachable or refused the statement; check CTRIP_DATABASE_URL."""

    retryable = True


class WebhookError(CtripError):
    """A webhook could not be delivered."""
