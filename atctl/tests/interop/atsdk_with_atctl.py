"""Atsign's Python SDK (atsdk) using a keys file written by atctl; run by tests/atsdk.rs.

Usage: atsdk_with_atctl.py KEYS_DIR ROOT_HOST ROOT_PORT
Reads what atctl stored (public, self and shared-with-@bob data), then stores values for atctl to read back.
Prints ATCTL-ATSDK-OK when every step passed; any failure raises.
"""
import sys

from at_client import AtClient
from at_client.common import AtSign
from at_client.common.keys import PublicKey, SelfKey, SharedKey
from at_client.connections import Address
from at_client.util.keysutil import KeysUtil

keys_dir, root_host, root_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
KeysUtil.expected_keys_files_location = keys_dir
alice = AtSign("@alice")
bob = AtSign("@bob")

client = AtClient(alice, root_address=Address(root_host, root_port))
assert client.is_authenticated(), "PKAM with atctl's keys file failed"
print("step: authenticated with atctl's keys file", flush=True)

got = client.get(PublicKey("location.wavi", alice))
assert got == "Lagos, Nigeria", got
got = client.get(SelfKey("phone.wavi", alice))
assert got == "+234 555 0100", got
print("step: read atctl's public and self data", flush=True)

got = client.get(SharedKey("phone.wavi", alice, bob))
assert got == "+234 555 0199", got
print("step: read what atctl shared with @bob (atctl's shared key)", flush=True)

client.put(PublicKey("city.py", alice), "Accra")
client.put(SelfKey("pin.py", alice), "4321 from python")
client.put(SharedKey("email.py", alice, bob), "alice@example.com")
print("step: wrote public, self and shared data", flush=True)

print("ATCTL-ATSDK-OK", flush=True)
