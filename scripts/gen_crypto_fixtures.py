#!/usr/bin/env python3
"""Independent known-answer vectors for at-protocol's crypto module, made with Python's `cryptography`.

Two directions, one file each under protocol/tests/fixtures/crypto/:

  generate  writes python_vectors.json: keys, CRAM digests, RSA PKCS#1 v1.5 ciphertexts, AES-256-CTR
            (PKCS#7 before CTR) ciphertexts, RSA-SHA256/SHA512 and ECC secp256r1 PKAM signatures, pubKeyCS,
            and a .atKeys file, all made here. tests/crypto_kat.rs checks Rust against them.
            Keys and signatures are random, so re-running changes the file: run it once and commit.
  verify    reads rust_made.json, which `cargo test -p at-protocol --test crypto_kat` writes (its content is
            deterministic: Rust signs fixed challenges with the keys from python_vectors.json, and RSA
            PKCS#1 v1.5 signatures and RFC 6979 ECDSA are deterministic), and checks every Rust-made
            signature and the Rust-made .atKeys file here; when atsdk is installed (scripts/python-env
            installs it) its own KeysUtil must load that .atKeys file and its AES must decrypt the values. The Rust test fails if its output ever differs
            from the committed rust_made.json, so a committed file verified by this script stays verified
            without cargo test needing Python.

Usage (the venv comes from scripts/python-env):
  "$(scripts/python-env)" scripts/gen_crypto_fixtures.py generate
  "$(scripts/python-env)" scripts/gen_crypto_fixtures.py verify
"""

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

FIXTURES = Path(__file__).resolve().parent.parent / "protocol" / "tests" / "fixtures" / "crypto"
ZERO_IV = bytes(16)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def rsa_public_b64(key) -> str:
    return b64(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def rsa_private_b64(key) -> str:
    return b64(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def aes_ctr_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def aes_ctr_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


HASHES = {"sha256": hashes.SHA256, "sha512": hashes.SHA512}


def ecc_sign(key, data: bytes) -> str:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return b64(f"{r:064x}{s:064x}".encode("ascii"))


def ecc_verify(public, data: bytes, sig_b64: str) -> None:
    text = unb64(sig_b64).decode("ascii")
    assert len(text) == 128, "ECC signature must be 128 hex chars"
    r, s = int(text[:64], 16), int(text[64:], 16)
    public.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))


CHALLENGES = [
    "_4a8d3c1e-5f7b-4e2a-9c61-0d2b7e8f9a10@alice:6f1e2d3c-4b5a-4978-8675-a4b3c2d1e0f9",
    "_0f0e0d0c-0b0a-4908-8706-050403020100@bob🛠:proof",
    "pol1.eyJ2IjoiQGFsaWNlIiwibiI6IjEyMyJ9",
]


def generate() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pub = rsa_key.public_key()
    ecc_key = ec.generate_private_key(ec.SECP256R1())
    ecc_pub_hex = ecc_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ).hex()
    ecc_priv_hex = f"{ecc_key.private_numbers().private_value:064x}"

    cram = []
    for secret, challenge in [
        ("b26455a907582760ebf35bc4847de549bc41c24b25c8b1c58d5964f7b4f8a43bc55b0e9a601c9a9657d9a8b8bbc32f88b4e38ffaca03c8710ebae1b14ca9f364", CHALLENGES[0]),
        ("secret", "challenge"),
        ("", ""),
        ("sécret", "_x@ünïcode:y"),
    ]:
        cram.append({
            "secret": secret,
            "challenge": challenge,
            "digest": hashlib.sha512((secret + challenge).encode("utf-8")).hexdigest(),
        })

    aes_key = os.urandom(32)
    rsa_ciphertexts = []
    for plaintext in [b64(aes_key), "hello", "ünïcode ✓"]:
        ct = rsa_pub.encrypt(plaintext.encode("utf-8"), asym_padding.PKCS1v15())
        rsa_ciphertexts.append({"plaintext": plaintext, "ciphertext": b64(ct)})

    aes = []
    for plaintext, iv in [
        ("+1 555 0100", os.urandom(16)),
        ("", os.urandom(16)),
        ("exactly sixteen!", os.urandom(16)),
        ("legacy value with zero IV, a bit longer than two blocks", None),
        ("ünïcode ✓ " * 10, os.urandom(16)),
    ]:
        used_iv = iv if iv is not None else ZERO_IV
        ct = aes_ctr_encrypt(aes_key, used_iv, plaintext.encode("utf-8"))
        aes.append({
            "key": b64(aes_key),
            "iv": b64(iv) if iv is not None else None,
            "plaintext": plaintext,
            "ciphertext": b64(ct),
        })

    rsa_sigs = []
    for challenge in CHALLENGES:
        for name, algo in HASHES.items():
            sig = rsa_key.sign(challenge.encode("utf-8"), asym_padding.PKCS1v15(), algo())
            rsa_sigs.append({"challenge": challenge, "hashing": name, "signature": b64(sig)})
    ecc_sigs = [{"challenge": c, "signature": ecc_sign(ecc_key, c.encode("utf-8"))} for c in CHALLENGES]

    # A .atKeys file as atsdk writes it: key strings AES-CTR encrypted under the self-encryption key, zero IV.
    pkam = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    enc = rsa_key
    sek = os.urandom(32)
    seal = lambda text: b64(aes_ctr_encrypt(sek, ZERO_IV, text.encode("utf-8")))
    atkeys = {
        "selfEncryptionKey": b64(sek),
        "aesPkamPublicKey": seal(rsa_public_b64(pkam.public_key())),
        "aesPkamPrivateKey": seal(rsa_private_b64(pkam)),
        "aesEncryptPublicKey": seal(rsa_public_b64(enc.public_key())),
        "aesEncryptPrivateKey": seal(rsa_private_b64(enc)),
        "@alice": b64(sek),
    }

    vectors = {
        "rsa_key": {"public": rsa_public_b64(rsa_pub), "private": rsa_private_b64(rsa_key)},
        "ecc_key": {"public_hex": ecc_pub_hex, "private_hex": ecc_priv_hex},
        "cram": cram,
        "rsa_decrypt": rsa_ciphertexts,
        "aes_ctr": aes,
        "rsa_signatures": rsa_sigs,
        "ecc_signatures": ecc_sigs,
        "pub_key_cs": {
            "public": rsa_public_b64(rsa_pub),
            "md5": hashlib.md5(rsa_public_b64(rsa_pub).encode("utf-8")).hexdigest(),
        },
        "atkeys": {
            "file": atkeys,
            "pkam_public": rsa_public_b64(pkam.public_key()),
            "pkam_private": rsa_private_b64(pkam),
            "encrypt_public": rsa_public_b64(enc.public_key()),
            "encrypt_private": rsa_private_b64(enc),
        },
    }
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out = FIXTURES / "python_vectors.json"
    out.write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def verify() -> None:
    vectors = json.loads((FIXTURES / "python_vectors.json").read_text(encoding="utf-8"))
    made = json.loads((FIXTURES / "rust_made.json").read_text(encoding="utf-8"))
    rsa_pub = serialization.load_der_public_key(unb64(vectors["rsa_key"]["public"]))
    ecc_pub = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(vectors["ecc_key"]["public_hex"])
    )
    checked = 0
    for item in made["rsa_signatures"]:
        algo = HASHES[item["hashing"]]()
        rsa_pub.verify(unb64(item["signature"]), item["challenge"].encode("utf-8"), asym_padding.PKCS1v15(), algo)
        checked += 1
    for item in made["ecc_signatures"]:
        ecc_verify(ecc_pub, item["challenge"].encode("utf-8"), item["signature"])
        checked += 1
    # Rust's ECC key (generated by Rust, hex point) must load here too.
    rust_ecc = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(made["ecc_own"]["public_hex"]))
    for item in made["ecc_own"]["signatures"]:
        ecc_verify(rust_ecc, item["challenge"].encode("utf-8"), item["signature"])
        checked += 1
    for item in made["aes_ctr"]:
        iv = unb64(item["iv"]) if item["iv"] else ZERO_IV
        got = aes_ctr_decrypt(unb64(item["key"]), iv, unb64(item["ciphertext"])).decode("utf-8")
        assert got == item["plaintext"], f"AES mismatch for {item['plaintext']!r}"
        checked += 1
    keys = made["atkeys"]["file"]
    sek = unb64(keys["selfEncryptionKey"])
    for field, want in [
        ("aesPkamPublicKey", made["atkeys"]["pkam_public"]),
        ("aesPkamPrivateKey", made["atkeys"]["pkam_private"]),
        ("aesEncryptPublicKey", made["atkeys"]["encrypt_public"]),
        ("aesEncryptPrivateKey", made["atkeys"]["encrypt_private"]),
    ]:
        got = aes_ctr_decrypt(sek, ZERO_IV, unb64(keys[field])).decode("utf-8")
        assert got == want, f".atKeys field {field} does not decrypt to the expected key"
        loaded = (
            serialization.load_der_private_key(unb64(got), password=None)
            if "Private" in field
            else serialization.load_der_public_key(unb64(got))
        )
        assert loaded is not None
        checked += 1
    checked += verify_with_atsdk(made)
    print(f"{checked} passed, 0 failed")


def verify_with_atsdk(made) -> int:
    """When Atsign's own Python SDK (atsdk, import name at_client) is installed, it must load the
    Rust-made .atKeys file and decrypt the Rust-made AES values too."""
    try:
        from at_client.util.encryptionutil import EncryptionUtil
        from at_client.util.keysutil import KeysUtil
    except ImportError:
        print("atsdk not installed: skipping its checks")
        return 0
    import tempfile

    checked = 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / KeysUtil.get_keys_file("@alice", "")
        path.write_text(json.dumps(made["atkeys"]["file"], indent=4), encoding="utf-8")
        KeysUtil.expected_keys_files_location = folder
        keys = KeysUtil.load_keys("@alice")
    assert keys[KeysUtil.pkam_private_key_name] == made["atkeys"]["pkam_private"]
    assert keys[KeysUtil.encryption_public_key_name] == made["atkeys"]["encrypt_public"]
    checked += 1
    for item in made["aes_ctr"]:
        iv = unb64(item["iv"]) if item["iv"] else ZERO_IV
        got = EncryptionUtil.aes_decrypt_from_base64(item["ciphertext"], item["key"], iv)
        assert got == item["plaintext"], f"atsdk AES mismatch for {item['plaintext']!r}"
        checked += 1
    return checked


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("generate", "verify"):
        sys.exit(__doc__)
    {"generate": generate, "verify": verify}[sys.argv[1]]()
