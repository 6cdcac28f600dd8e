"""Atsign's Python SDK (atsdk) sharing with atctl across two atServers; run by tests/atsdk.rs.

Usage: atsdk_shared.py KEYS_DIR ROOT_HOST ROOT_PORT
KEYS_DIR holds the keys files atctl onboarding wrote for @alice and @bob. atsdk as @bob reads, on
@bob's own server, what atctl as @alice shared with him; atsdk as @alice shares with @bob using the
shared key atctl made; atsdk as @bob shares with @alice with a key it makes itself. tests/atsdk.rs
then reads the last two with atctl, and its monitor decrypts a notification atsdk as @alice sends. Prints ATSDK-SHARED-OK when every step passed; any failure raises.
"""
import sys

from at_client import AtClient
from at_client.common import AtSign
from at_client.common.keys import SharedKey
from at_client.connections import Address
from at_client.util.keysutil import KeysUtil

keys_dir, root_host, root_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
KeysUtil.expected_keys_files_location = keys_dir
alice = AtSign("@alice")
bob = AtSign("@bob")
root = Address(root_host, root_port)

as_bob = AtClient(bob, root_address=root)
assert as_bob.is_authenticated(), "PKAM as @bob with atctl's keys file failed"
got = as_bob.get(SharedKey("phone.wavi", alice, bob))
assert got == "+234 555 0100", got
print("step: @bob read what atctl (as @alice) shared with him", flush=True)

as_alice = AtClient(alice, root_address=root)
assert as_alice.is_authenticated(), "PKAM as @alice with atctl's keys file failed"
as_alice.put(SharedKey("email.py", alice, bob), "alice@example.com from python")
print("step: @alice shared with @bob using atctl's shared key", flush=True)

# @bob has no key shared with @alice yet: atsdk makes one, fetching @alice's public key through
# @bob's server.
as_bob.put(SharedKey("reply.py", bob, alice), "pong from python")
got = as_bob.get(SharedKey("email.py", alice, bob))
assert got == "alice@example.com from python", got
print("step: @bob shared with @alice and read @alice's atsdk share", flush=True)

# A notification carrying no sharedKeyEnc: the recipient's monitor must look the shared key up.
as_alice.notify(SharedKey("note.py", alice, bob), "hello from python")
print("step: @alice notified @bob", flush=True)

print("ATSDK-SHARED-OK", flush=True)
