#!/usr/bin/env python3
"""Checks NetMind's EIP-712 order signing against an independent implementation
(eth-account, the Python library behind web3.py): offers (`Offer`), job orders
(`JobOrder`) and cancels (`Cancel(address maker,bytes32 order,uint64 expiry)`).

Reads one JSON object on stdin:
  {"encode_type": "Offer(address host,string class,...)",   # the struct's EIP-712 encodeType
   "domain": {"name": ..., "version": ..., "chainId": ...},
   "message": {...},                                        # the order's fields
   "hash": "0x...",                                         # NetMind's signing hash
   "signature": "0x...",                                    # 65 bytes r || s || v
   "signer": "0x..."}                                       # the maker
Prints eth-account's signing hash and recovered signer; exits 1 naming the
first disagreement.
"""
import json
import re
import sys

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data


def types_from_encode_type(encode_type: str) -> tuple[str, dict]:
    """`Name(type a,type b)` (one struct, no nested structs) -> EIP-712 `types`."""
    m = re.fullmatch(r"(\w+)\((.*)\)", encode_type)
    if not m:
        raise SystemExit(f"cannot parse encodeType {encode_type!r}")
    name, fields = m.groups()
    members = [dict(zip(("type", "name"), f.split(" "))) for f in fields.split(",") if f]
    return name, {name: members}


def coerce(kind: str, value):
    """JSON from serde: integers may come as hex or decimal strings."""
    if kind.endswith("[]"):
        return [coerce(kind[:-2], v) for v in value]
    if kind.startswith(("uint", "int")) and isinstance(value, str):
        return int(value, 16) if value.startswith("0x") else int(value)
    if re.fullmatch(r"bytes\d+", kind):
        # `0x` and hex digits (an order id, a bundle id): bytes, never text.
        raw = bytes.fromhex(value[2:] if value.startswith("0x") else value)
        if len(raw) != int(kind[5:]):
            raise SystemExit(f"{kind} value {value!r} is {len(raw)} bytes")
        return raw
    return value


def main() -> int:
    case = json.load(sys.stdin)
    primary, types = types_from_encode_type(case["encode_type"])
    message = {f["name"]: coerce(f["type"], case["message"][f["name"]]) for f in types[primary]}
    domain = case["domain"]
    types["EIP712Domain"] = [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
    ]
    signable = encode_typed_data(full_message={
        "types": types, "primaryType": primary, "domain": domain, "message": message,
    })
    digest = "0x" + _hash_eip191_message(signable).hex()
    print(f"hash {digest}")
    if digest.lower() != case["hash"].lower():
        print(f"hash differs: eth-account {digest}, netmind {case['hash']}", file=sys.stderr)
        return 1
    signer = Account.recover_message(signable, signature=bytes.fromhex(case["signature"][2:]))
    print(f"signer {signer}")
    if signer.lower() != case["signer"].lower():
        print(f"signer differs: eth-account {signer}, netmind {case['signer']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
