"""A real EVM in the commerce process: py-evm through eth-tester, with the EIP-3009 test dollar deployed on it.

So the x402 payments of `make run` and the tests are settled by a contract, not by our code: the
token (`token.vy`, compiled here with the vyper package, offline, its artifact cached by source
hash) checks each signature, validity window and nonce, and moves the balances. The chain lives in
this process's memory: lost on restart, and one per process (every commerce replica in a process
shares it, as replicas share a real network); the replay store in Postgres still refuses old
payments after a restart.

eth-tester and py-evm are synchronous and not thread-safe: every call on the chain runs on one
worker thread (`LocalChain.run`), which keeps the event loop free and the chain's calls in order.
"""

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError
from x402.mechanisms.evm.signers import FacilitatorWeb3Signer

from shared.kernel.errors import InvalidRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_SOURCE = Path(__file__).with_name("token.vy")


@dataclass(frozen=True)
class TokenConfig:
    """The test dollar's identity: its EIP-712 domain (`name`, `version`) goes into every price's `extra`."""

    name: str
    symbol: str
    version: str


def compiled_token(cache_dir: Path | None) -> dict[str, Any]:
    """The token's ABI and bytecode: compiled with vyper (about a second), or read back from `cache_dir`."""
    source = TOKEN_SOURCE.read_text()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    cached = cache_dir / f"token-{digest}.json" if cache_dir else None
    if cached and cached.exists():
        try:
            return json.loads(cached.read_text())
        except ValueError:
            log.warning("ignoring a corrupt token artifact at %s", cached)
    from vyper.compiler import compile_code

    out = compile_code(source, output_formats=["abi", "bytecode"])
    artifact = {"abi": out["abi"], "bytecode": out["bytecode"]}
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".tmp")
        partial.write_text(json.dumps(artifact))
        partial.replace(cached)
    return artifact


class LocalChainSigner(FacilitatorWeb3Signer):
    """x402's own web3 facilitator signer, talking to the in-process chain instead of an RPC URL.

    Everything but the connection is the official signer's: EIP-712/EIP-1271 verification, the
    nonce reservation, `transferWithAuthorization` sent from a funded eth-tester account that pays gas.
    """

    def __init__(self, w3: Web3, private_key: bytes) -> None:
        # the official constructor (an HTTP provider that is never used: nothing connects until a call), then our web3
        super().__init__("0x" + private_key.hex(), rpc_url="http://127.0.0.1:9", confirmation_timeout_seconds=10.0)
        self._w3 = w3


class LocalChain:
    """One in-process EVM with the test dollar: mint, balances, and the facilitator's signer."""

    def __init__(self, token: TokenConfig, cache_dir: Path | None) -> None:
        self.token = token
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-evm")
        self._executor.submit(self._start, cache_dir).result()

    def _start(self, cache_dir: Path | None) -> None:
        tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(tester))
        keys = tester.backend.account_keys
        self._deployer = Account.from_key(keys[0].to_bytes())
        artifact = compiled_token(cache_dir)
        contract = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = contract.constructor(self.token.name, self.token.symbol, self.token.version).transact(
            {"from": self._deployer.address})
        address = self.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        self.contract = self.w3.eth.contract(address=address, abi=artifact["abi"])
        self.asset: str = address
        self.chain_id: int = self.w3.eth.chain_id
        self.network = f"eip155:{self.chain_id}"
        self.signer = LocalChainSigner(self.w3, keys[1].to_bytes())
        log.info("local EVM %s: %s (%s) deployed at %s", self.network, self.token.name, self.token.symbol, address)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the chain's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def mint(self, address: str, amount: int) -> str:
        """Mint `amount` atomic units to `address` (the deployer is the minter); the transaction's hash."""
        try:
            tx = self.contract.functions.mint(Web3.to_checksum_address(address), amount).transact(
                {"from": self._deployer.address})
            receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        except (ContractLogicError, TransactionFailed) as error:
            raise InvalidRequest(f"the token refused the mint: {error}", {"reason": "mint_reverted"}) from None
        if receipt["status"] != 1:
            raise InvalidRequest(f"the token refused the mint: {tx.hex()}", {"reason": "mint_reverted"})
        return "0x" + bytes(tx).hex().removeprefix("0x")

    def balance(self, address: str) -> int:
        return self.contract.functions.balanceOf(Web3.to_checksum_address(address)).call()

    def nonce_used(self, authorizer: str, nonce: bytes) -> bool:
        return self.contract.functions.authorizationState(Web3.to_checksum_address(authorizer), nonce).call()

    def close(self) -> None:
        self._executor.shutdown(wait=False)


_chains: dict[TokenConfig, LocalChain] = {}
_chains_lock = threading.Lock()


def local_chain(token: TokenConfig, cache_dir: Path | None) -> LocalChain:
    """This process's chain for `token` (created on first use): replicas in one process share one network."""
    with _chains_lock:
        if token not in _chains:
            _chains[token] = LocalChain(token, cache_dir)
        return _chains[token]
