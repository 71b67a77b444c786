# pragma version ~=0.4.3
"""
@title The local chain's test dollar: an ERC-20 with EIP-3009 transfers by signed authorization
@notice What x402's `exact` EVM scheme settles with (like USDC): the payer signs an EIP-712
        `TransferWithAuthorization`, anyone submits it, and this contract — not our code — checks
        the signature, the validity window and that the nonce was never used. 6 decimals, minted
        by the deployer (`one x402 fund`). Revert reasons are the ones x402's facilitator maps.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

name: public(String[64])
symbol: public(String[32])
version: public(String[16])
decimals: public(constant(uint8)) = 6
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])
minter: public(address)

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TRANSFER_TYPEHASH: constant(bytes32) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
RECEIVE_TYPEHASH: constant(bytes32) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
# secp256k1n / 2: a higher `s` is the malleable twin of a valid signature (EIP-2)
HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


@deploy
def __init__(name_: String[64], symbol_: String[32], version_: String[16]):
    self.name = name_
    self.symbol = symbol_
    self.version = version_
    self.minter = msg.sender


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    return self._domain_separator()


@view
@internal
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(
        DOMAIN_TYPEHASH, keccak256(self.name), keccak256(self.version), chain.id, self
    ))


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "transfer to the zero address"
    assert self.balanceOf[sender] >= amount, "transfer amount exceeds balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _use_authorization(typehash: bytes32, sender: address, receiver: address, amount: uint256,
                       valid_after: uint256, valid_before: uint256, nonce: bytes32,
                       v: uint8, r: bytes32, s: bytes32):
    assert block.timestamp > valid_after, "authorization is not yet valid"
    assert block.timestamp < valid_before, "authorization is expired"
    assert not self.authorizationState[sender][nonce], "authorization is used"
    assert convert(s, uint256) <= HALF_ORDER, "invalid signature"
    digest: bytes32 = keccak256(concat(
        b"\x19\x01",
        self._domain_separator(),
        keccak256(abi_encode(typehash, sender, receiver, amount, valid_after, valid_before, nonce)),
    ))
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address) and signer == sender, "invalid signature"
    self.authorizationState[sender][nonce] = True
    log AuthorizationUsed(authorizer=sender, nonce=nonce)


@external
def transferWithAuthorization(_from: address, to: address, amount: uint256, validAfter: uint256,
                              validBefore: uint256, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    self._use_authorization(TRANSFER_TYPEHASH, _from, to, amount, validAfter, validBefore, nonce, v, r, s)
    self._transfer(_from, to, amount)


@external
def receiveWithAuthorization(_from: address, to: address, amount: uint256, validAfter: uint256,
                             validBefore: uint256, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    assert msg.sender == to, "caller must be the payee"
    self._use_authorization(RECEIVE_TYPEHASH, _from, to, amount, validAfter, validBefore, nonce, v, r, s)
    self._transfer(_from, to, amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transferFrom(sender: address, to: address, amount: uint256) -> bool:
    assert self.allowance[sender][msg.sender] >= amount, "insufficient allowance"
    self.allowance[sender][msg.sender] -= amount
    self._transfer(sender, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    assert msg.sender == self.minter, "only the minter mints"
    assert to != empty(address), "mint to the zero address"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)
