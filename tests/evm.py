"""Real-chain test helpers: a local anvil node, raw JSON-RPC and test-token helpers.

Transactions are sent from anvil's unlocked default accounts (no local signing).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"

DEFAULT_CHAIN_ID = 31337
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"

# The 10 default anvil accounts (mnemonic above, path m/44'/60'/0'/0/i), 10000 ETH each.
ANVIL_ACCOUNTS: tuple[str, ...] = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
)
# Matching private keys (public, well-known test keys; never use on a real network).
ANVIL_PRIVATE_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()

_SEL_MINT = keccak(text="mint(address,uint256)")[:4]
_SEL_TRANSFER = keccak(text="transfer(address,uint256)")[:4]
_SEL_BALANCE_OF = keccak(text="balanceOf(address)")[:4]

TokenKind = Literal["standard", "noreturn"]
_ARTIFACT_FOR_KIND: dict[str, str] = {
    "standard": "TestToken",
    "noreturn": "NoReturnToken",
}


class AnvilError(RuntimeError):
    """Anvil could not be found, started, or returned a JSON-RPC error."""


class RpcError(AnvilError):
    """A JSON-RPC call returned an error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code: int | None = error.get("code")
        self.data: Any = error.get("data")
        self.rpc_message: str = str(error.get("message", ""))
        super().__init__(f"{method}: {error}")


def find_anvil() -> str:
    """Return the anvil binary: $CTRIP_ANVIL, else <repo>/.tools/anvil, else PATH."""
    env = os.environ.get("CTRIP_ANVIL")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise AnvilError(f"CTRIP_ANVIL={env!r} is not an executable file")
        return env
    local = REPO_ROOT / ".tools" / "anvil"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise AnvilError(
        "anvil not found: set $CTRIP_ANVIL, put the binary at .tools/anvil, or add "
        "it to PATH (e.g. `npm pack @foundry-rs/anvil-linux-amd64@1.7.1`, untar, "
        "use package/bin/anvil)"
    )


def load_artifact(name: str) -> dict[str, Any]:
    """Load tests/contracts/<name>.json ({"abi": [...], "bytecode": "0x..."})."""
    return cast(
        dict[str, Any], json.loads((CONTRACTS_DIR / f"{name}.json").read_text())
    )


def _set_pdeathsig() -> None:
    """In the child (Linux): SIGTERM when the parent thread dies; never outlive us."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # best effort only
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


_LIVE: weakref.WeakSet[Anvil] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for node in list(_LIVE):
        node.stop()


class Anvil:
    """A local anvil node on a free port; use as a context manager or call .stop()."""

    def __init__(
        self,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        block_time: float | None = None,
        automine: bool = True,
        hardfork: str | None = None,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        """Start anvil on a free port.

        block_time enables interval mining; automine=False starts with --no-mining.
        """
        self.chain_id = chain_id
        self.binary = binary or find_anvil()
        args = [
            self.binary,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--chain-id",
            str(chain_id),
        ]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        if not automine and block_time is None:
            args.append("--no-mining")
        if hardfork:
            args += ["--hardfork", hardfork]
        args += list(extra_args)
        self.args = args
        self._tail: collections.deque[str] = collections.deque(maxlen=50)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        # --quiet also hides the "Listening on" line: read stdout and drain it forever.
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None,
        )
        _LIVE.add(self)
        ready = threading.Event()
        self.host = "127.0.0.1"
        self.port = 0
        self._reader = threading.Thread(target=self._drain, args=(ready,), daemon=True)
        self._reader.start()
        if not ready.wait(start_timeout) or not self.port:
            self.stop()
            raise AnvilError(
                f"anvil did not start ({' '.join(args)}):\n" + "\n".join(self._tail)
            )
        self.url = f"http://{self.host}:{self.port}"

    def _drain(self, ready: threading.Event) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                self._tail.append(line)
                if not ready.is_set() and line.startswith("Listening on "):
                    hostport = line[len("Listening on ") :].strip()
                    host, _, port = hostport.rpartition(":")
                    self.host, self.port = host, int(port)
                    ready.set()
        except (ValueError, OSError):
            pass  # stop() closed the pipe while this thread was reading it
        ready.set()  # process exited: unblock the waiter

    # -- lifecycle --

    def stop(self) -> None:
        """Terminate the node (SIGTERM, then SIGKILL after 3 s). Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        _LIVE.discard(self)

    @property
    def running(self) -> bool:
        """True while the anvil process is alive."""
        return self.proc.poll() is None

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Anvil(url={getattr(self, 'url', None)!r}, pid={self.proc.pid})"

    # -- JSON-RPC --

    def rpc(self, method: str, *params: Any) -> Any:
        """Call a JSON-RPC method and return its result; raise RpcError on error."""
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": next(self._ids),
                "method": method,
                "params": list(params),
            }
        )
        with self._lock:
            for attempt in (0, 1):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(
                        self.host, self.port, timeout=30
                    )
                try:
                    self._conn.request(
                        "POST", "/", body, {"Content-Type": "application/json"}
                    )
                    raw = self._conn.getresponse().read()
                    break
                except (http.client.HTTPException, OSError):
                    self._conn.close()
                    self._conn = None
                    if attempt or not self.running:
                        raise
        reply = json.loads(raw)
        if reply.get("error") is not None:
            raise RpcError(method, reply["error"])
        return reply.get("result")

    # -- chain control --

    def block_number(self) -> int:
        """Current head block number."""
        return int(self.rpc("eth_blockNumber"), 16)

    def get_block(
        self, number: int | str = "latest", full: bool = False
    ) -> dict[str, Any] | None:
        """eth_getBlockByNumber for an int height or a tag."""
        tag = hex(number) if isinstance(number, int) else number
        return cast(
            "dict[str, Any] | None", self.rpc("eth_getBlockByNumber", tag, full)
        )

    def mine(self, n: int = 1) -> None:
        """Mine n blocks immediately (anvil_mine)."""
        self.rpc("anvil_mine", hex(n))

    def snapshot(self) -> str:
        """Take an EVM snapshot; returns its id (hex string)."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        """Revert to a snapshot (the snapshot is consumed). Returns True on success."""
        return bool(self.rpc("evm_revert", snapshot_id))

    def reorg(self, depth: int, tx_block_pairs: Iterable[tuple[Any, int]] = ()) -> None:
        """Replace the last `depth` blocks with `depth` new ones (anvil_reorg).

        tx_block_pairs: (tx, block_offset) where tx is a raw signed tx hex string or a
        tx request dict ({"from", "to", "value", ...}) and block_offset (0..depth-1)
        picks the new block. Transactions of the removed blocks are dropped (not
        re-included, not put back in the mempool).
        The RPC takes positional params: anvil_reorg(depth, [[tx, offset], ...]).
        """
        pairs = [[tx, offset] for tx, offset in tx_block_pairs]
        self.rpc("anvil_reorg", depth, pairs)

    def rollback(self, depth: int) -> None:
        """Remove the last `depth` blocks without replacing them (anvil_rollback)."""
        self.rpc("anvil_rollback", depth)

    def set_automine(self, enabled: bool) -> None:
        """Turn automine on/off (evm_setAutomine)."""
        self.rpc("evm_setAutomine", enabled)

    def set_interval_mining(self, seconds: int) -> None:
        """Mine every `seconds` (0 disables interval mining)."""
        self.rpc("evm_setIntervalMining", seconds)

    def set_balance(self, addr: str, wei: int) -> None:
        """Set the native balance of an address (anvil_setBalance)."""
        self.rpc("anvil_setBalance", addr, hex(wei))


# -- transactions --


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr_word(addr: str) -> bytes:
    return bytes.fromhex(addr[2:].rjust(64, "0"))


def get_receipt(anvil: Anvil, tx_hash: str) -> dict[str, Any] | None:
    """Return the receipt for tx_hash, or None if it is not mined yet."""
    return cast(
        "dict[str, Any] | None", anvil.rpc("eth_getTransactionReceipt", tx_hash)
    )


def wait_receipt(anvil: Anvil, tx_hash: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll until tx_hash is mined and return its receipt (does not mine by itself)."""
    deadline = time.monotonic() + timeout
    while True:
        receipt = get_receipt(anvil, tx_hash)
        if receipt is not None:
            return receipt
        if time.monotonic() > deadline:
            raise AnvilError(f"transaction {tx_hash} not mined within {timeout}s")
        time.sleep(0.02)


def send_tx(anvil: Anvil, tx: dict[str, Any], wait: bool = True) -> str:
    """Send tx from an unlocked account; returns the tx hash.

    With wait=True and automine on, uses eth_sendTransactionSync so the tx is mined on
    return (plain eth_sendTransaction returns BEFORE automine mined it). With
    automine off (or wait=False) it only enters the mempool.
    """
    if wait and anvil.rpc("anvil_getAutomine"):
        return str(anvil.rpc("eth_sendTransactionSync", tx)["transactionHash"])
    return str(anvil.rpc("eth_sendTransaction", tx))


def _send_and_confirm(anvil: Anvil, tx: dict[str, Any]) -> dict[str, Any]:
    """Send tx, mine a block if still pending (automine off), require status 1."""
    tx_hash = send_tx(anvil, tx)
    receipt = get_receipt(anvil, tx_hash)
    if receipt is None:
        anvil.mine(1)
        receipt = wait_receipt(anvil, tx_hash)
    if int(receipt["status"], 16) != 1:
        raise AnvilError(f"transaction {tx_hash} failed: {receipt}")
    return receipt


def deploy_contract(
    anvil: Anvil,
    artifact: str,
    ctor_types: Sequence[str] = (),
    ctor_args: Sequence[Any] = (),
    sender: str = ANVIL_ACCOUNTS[0],
) -> str:
    """Deploy tests/contracts/<artifact>.json; returns its checksum address."""
    code = load_artifact(artifact)["bytecode"]
    data = code + (
        abi_encode(list(ctor_types), list(ctor_args)).hex() if ctor_types else ""
    )
    receipt = _send_and_confirm(anvil, {"from": sender, "data": data})
    return to_checksum_address(receipt["contractAddress"])


def deploy_token(
    anvil: Anvil,
    kind: TokenKind = "standard",
    decimals: int = 18,
    symbol: str = "TT",
    name: str | None = None,
    sender: str = ANVIL_ACCOUNTS[0],
) -> str:
    """Deploy TestToken ("standard") or NoReturnToken ("noreturn"); returns address."""
    if kind not in _ARTIFACT_FOR_KIND:
        raise ValueError(f"unknown token kind {kind!r}")
    return deploy_contract(
        anvil,
        _ARTIFACT_FOR_KIND[kind],
        ("string", "string", "uint8"),
        (name or f"Test {symbol}", symbol, decimals),
        sender=sender,
    )


def deploy_reverter(anvil: Anvil, sender: str = ANVIL_ACCOUNTS[0]) -> str:
    """Deploy Reverter (rejects any call/value); returns its checksum address."""
    return deploy_contract(anvil, "Reverter", sender=sender)


def mint(
    anvil: Anvil, token: str, to: str, amount: int, sender: str = ANVIL_ACCOUNTS[0]
) -> str:
    """Mint `amount` base units of `token` to `to` (awaited); returns tx hash."""
    data = "0x" + (_SEL_MINT + _addr_word(to) + _word(amount)).hex()
    receipt = _send_and_confirm(anvil, {"from": sender, "to": token, "data": data})
    return str(receipt["transactionHash"])


def token_transfer(
    anvil: Anvil,
    token: str,
    sender: str,
    to: str,
    amount: int,
    gas: int | None = None,
    wait: bool = True,
) -> str:
    """Send `token.transfer(to, amount)` from unlocked `sender`; returns the tx hash.

    Mined on return when automine is on (see send_tx). A failing transfer (e.g.
    insufficient balance) is NOT rejected by anvil 1.7.1: it is mined with status 0.
    """
    data = "0x" + (_SEL_TRANSFER + _addr_word(to) + _word(amount)).hex()
    tx: dict[str, Any] = {"from": sender, "to": token, "data": data}
    if gas is not None:
        tx["gas"] = hex(gas)
    return send_tx(anvil, tx, wait)


def send_native(anvil: Anvil, sender: str, to: str, wei: int, wait: bool = True) -> str:
    """Send `wei` native coin from unlocked `sender`; returns tx hash (see send_tx)."""
    return send_tx(anvil, {"from": sender, "to": to, "value": hex(wei)}, wait)


def send_reverting_native(
    anvil: Anvil,
    sender: str,
    wei: int,
    reverter: str | None = None,
    gas: int = 100_000,
    wait: bool = True,
) -> str:
    """Send `wei` to a Reverter contract with fixed gas: mined with receipt status 0.

    Deploys a Reverter unless one is given. Returns the tx hash (see send_tx).
    """
    target = reverter or deploy_reverter(anvil)
    return send_tx(
        anvil, {"from": sender, "to": target, "value": hex(wei), "gas": hex(gas)}, wait
    )


def balance_of(anvil: Anvil, token: str, addr: str, block: int | str = "latest") -> int:
    """ERC-20 balanceOf(addr) via eth_call."""
    data = "0x" + (_SEL_BALANCE_OF + _addr_word(addr)).hex()
    tag = hex(block) if isinstance(block, int) else block
    return int(anvil.rpc("eth_call", {"to": token, "data": data}, tag), 16)


def native_balance(anvil: Anvil, addr: str, block: int | str = "latest") -> int:
    """Native coin balance in wei."""
    tag = hex(block) if isinstance(block, int) else block
    return int(anvil.rpc("eth_getBalance", addr, tag), 16)
