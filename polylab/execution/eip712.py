"""EIP-712 building blocks shared by order signing (V1/V2/V3) and CLOB L1 auth.

Why hand-rolled: eth-account's ``encode_typed_data`` + ``sign_message`` costs ~500 µs per
order; the typed data polylab signs is fixed, so the type hashes and domain separators are
computed once and each order costs two keccak-256 calls (~5 µs each, pycryptodome) and one
libsecp256k1 recoverable signature (~35 µs, coincurve). The output is byte-identical to
eth-account (RFC 6979 nonces, low-s, ``v`` = 27/28), which the tests check.

Units: digests and words are ``bytes`` (32); signatures are 65 bytes ``r ‖ s ‖ v``; addresses
are ``0x``-prefixed 40-hex-digit strings, returned EIP-55 checksummed.

Errors::

    ValueError
     └── SignatureError   malformed or non-canonical signature, or recovery failed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NoReturn

from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak as _keccak_mod

__all__ = [
    "DOMAIN_TYPE_HASH",
    "DOMAIN_TYPE_STRING",
    "SECP256K1_N",
    "ZERO_WORD",
    "Domain",
    "SignatureError",
    "SigningKey",
    "address_from_private_key",
    "address_word",
    "domain_separator",
    "hash_string",
    "keccak256",
    "recover_address",
    "sign_digest",
    "signature_from_hex",
    "to_checksum_address",
    "typed_data_digest",
    "word_bytes32",
    "word_uint",
    "word_uint8",
]

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group; canonical signatures have ``s ≤ N // 2``."""

_HALF_N: Final = SECP256K1_N // 2
_UINT256_LIMIT: Final = 1 << 256
ZERO_WORD: Final = bytes(32)
"""ABI word of 0 (also the zero address, and the bytes32 zero used for metadata/builder)."""

DOMAIN_TYPE_STRING: Final = (
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)

_keccak_new = _keccak_mod.new


class SignatureError(ValueError):
    """A signature that is malformed, non-canonical (high s, v not 27/28) or unrecoverable."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's pre-NIST padding) of ``data``; 32 bytes."""
    return _keccak_new(digest_bits=256, data=data).digest()


def hash_string(text: str) -> bytes:
    """EIP-712 encoding of a ``string`` member: keccak-256 of its UTF-8 bytes."""
    return keccak256(text.encode("utf-8"))


DOMAIN_TYPE_HASH: Final = hash_string(DOMAIN_TYPE_STRING)


def word_uint(value: int) -> bytes:
    """ABI word of a ``uint256``; ``ValueError`` outside ``[0, 2**256)`` (never wraps)."""
    if not 0 <= value < _UINT256_LIMIT:
        raise ValueError(f"uint256 out of range: {value}")
    return value.to_bytes(32, "big")


def word_uint8(value: int) -> bytes:
    """ABI word of a ``uint8`` (side, signature type); ``ValueError`` outside ``[0, 255]``."""
    if not 0 <= value <= 255:
        raise ValueError(f"uint8 out of range: {value}")
    return value.to_bytes(32, "big")


def word_bytes32(value: bytes | str) -> bytes:
    """ABI word of a ``bytes32`` given as 32 raw bytes or ``0x`` + 64 hex digits.

    Shorter hex is left-padded with zeros, as py-clob-client-v2's ``_hex_to_bytes32`` does.
    """
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ValueError(f"bytes32 must be 32 bytes, got {len(value)}")
        return value
    digits = value[2:] if value[:2] in ("0x", "0X") else value
    if len(digits) > 64:
        raise ValueError(f"bytes32 hex longer than 64 digits: {value!r}")
    return bytes.fromhex(digits.zfill(64))


def to_checksum_address(address: str) -> str:
    """EIP-55 checksummed form of a ``0x`` + 40-hex address (any case accepted)."""
    digits = _address_digits(address).lower()
    nibbles = keccak256(digits.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c > "9" and nibbles[i] >= "8" else c for i, c in enumerate(digits)
    )


def _address_digits(address: str) -> str:
    if len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise ValueError(f"address must be 0x + 40 hex digits: {address!r}")
    digits = address[2:]
    try:
        int(digits, 16)
    except ValueError:
        raise ValueError(f"address must be 0x + 40 hex digits: {address!r}") from None
    return digits


_address_words: dict[str, bytes] = {}
_ADDRESS_CACHE_LIMIT: Final = 65_536


def address_word(address: str) -> bytes:
    """ABI word of an ``address``, validated once and memoised.

    Mixed-case input must carry a valid EIP-55 checksum (as eth-account/eth-abi require), so a
    mistyped address fails here instead of signing for an account nobody controls.
    """
    w = _address_words.get(address)
    if w is None:
        digits = _address_digits(address)
        mixed_case = digits != digits.lower() and digits != digits.upper()
        if mixed_case and to_checksum_address(address) != "0x" + digits:
            raise ValueError(f"address has an invalid EIP-55 checksum: {address!r}")
        w = bytes(12) + bytes.fromhex(digits)
        if len(_address_words) >= _ADDRESS_CACHE_LIMIT:
            _address_words.clear()
        _address_words[address] = w
    return w


def domain_separator(
    name: str, version: str, chain_id: int, verifying_contract: str | None
) -> bytes:
    """EIP-712 domain separator (32 bytes).

    With ``verifying_contract=None`` the domain type is ``EIP712Domain(string name,string
    version,uint256 chainId)``, the shape of the CLOB's ``ClobAuthDomain``.
    """
    if verifying_contract is None:
        type_hash = hash_string("EIP712Domain(string name,string version,uint256 chainId)")
        tail = b""
    else:
        type_hash = DOMAIN_TYPE_HASH
        tail = address_word(verifying_contract)
    return keccak256(
        type_hash + hash_string(name) + hash_string(version) + word_uint(chain_id) + tail
    )


@dataclass(frozen=True, slots=True)
class Domain:
    """An EIP-712 domain with its separator computed once at construction.

    ``verifying_contract=None`` gives the three-field domain used by ``ClobAuthDomain``; a
    contract address is stored checksummed, so equal domains compare equal whatever the case.
    """

    name: str
    version: str
    chain_id: int
    verifying_contract: str | None
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.verifying_contract is not None:
            address_word(self.verifying_contract)  # rejects a bad EIP-55 checksum
            object.__setattr__(
                self, "verifying_contract", to_checksum_address(self.verifying_contract)
            )
        sep = domain_separator(self.name, self.version, self.chain_id, self.verifying_contract)
        object.__setattr__(self, "separator", sep)


def typed_data_digest(separator: bytes, struct_hash: bytes) -> bytes:
    """The 32-byte EIP-712 digest ``keccak256(0x1901 ‖ domainSeparator ‖ hashStruct)``."""
    return keccak256(b"\x19\x01" + separator + struct_hash)


def _public_key_to_address(public_key: PublicKey) -> str:
    return to_checksum_address(
        "0x" + keccak256(public_key.format(compressed=False)[1:])[-20:].hex()
    )


def _parse_private_key(private_key: str | bytes) -> bytes:
    if isinstance(private_key, str):
        text = private_key[2:] if private_key[:2] in ("0x", "0X") else private_key
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("private key must be 32 bytes of hex") from None
    else:
        raw = bytes(private_key)
    if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_N:
        raise ValueError("private key must be 32 bytes in [1, N)")
    return raw


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """Sign a 32-byte digest; returns 65 bytes ``r ‖ s ‖ v`` with ``v`` = 27/28 (Ethereum form).

    Deterministic (RFC 6979) and low-s, hence identical to eth-account's ``unsafe_sign_hash``.
    Prefer ``SigningKey.sign_digest`` on hot paths: it skips re-deriving the public key.
    """
    return SigningKey(private_key).sign_digest(digest)


def address_from_private_key(private_key: str | bytes) -> str:
    """Checksummed address of a private key (hex string or 32 bytes)."""
    return SigningKey(private_key).address


class SigningKey:
    """A secp256k1 private key that signs digests and never shows itself.

    ``repr``/``str`` print only the address; pickling is refused so a key cannot leak into a
    pickle, a multiprocessing queue or a cache: build the key in the process that signs.
    """

    __slots__ = ("_key", "address", "address_word")

    address: str
    """The key's checksummed Ethereum address (the order ``signer`` for EOA signing)."""
    address_word: bytes
    """ABI word of ``address``, precomputed for struct hashing."""

    def __init__(self, private_key: str | bytes) -> None:
        self._key = PrivateKey(_parse_private_key(private_key))
        self.address = _public_key_to_address(self._key.public_key)
        self.address_word = address_word(self.address)

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte ``r ‖ s ‖ v`` signature (``v`` = 27/28) of a 32-byte digest."""
        if len(digest) != 32:
            raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
        sig = self._key.sign_recoverable(digest, hasher=None)
        return sig[:64] + (sig[64] + 27).to_bytes(1, "big")

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address!r}, key=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled: build it where it signs")


def signature_from_hex(signature: str) -> bytes:
    """``0x``-hex signature → bytes; ``SignatureError`` if it is not hex."""
    text = signature[2:] if signature[:2] in ("0x", "0X") else signature
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SignatureError("signature is not hex") from None


def recover_address(digest: bytes, signature: bytes | str) -> str:
    """The checksummed address whose key produced ``signature`` over ``digest`` (ecrecover).

    Accepts only what the exchange contracts accept (OpenZeppelin ``ECDSA.recover``): 65 bytes,
    ``v`` in {27, 28}, ``0 < r < N``, ``0 < s ≤ N/2``. Anything else raises ``SignatureError``,
    so a malleated copy of a valid signature is rejected rather than recovered.
    """
    sig = signature_from_hex(signature) if isinstance(signature, str) else signature
    if len(sig) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(sig)}")
    v = sig[64]
    if v not in (27, 28):
        raise SignatureError(f"signature v must be 27 or 28, got {v}")
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:64], "big")
    if not (0 < r < SECP256K1_N and 0 < s <= _HALF_N):
        raise SignatureError("signature r/s out of range or not low-s")
    if len(digest) != 32:
        raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
    try:
        public_key = PublicKey.from_signature_and_message(
            sig[:64] + (v - 27).to_bytes(1, "big"), digest, hasher=None
        )
    except ValueError as exc:
        raise SignatureError(f"signature does not recover: {exc}") from None
    return _public_key_to_address(public_key)
