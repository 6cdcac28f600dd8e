"""Two atSigns through atsdk across two atservers resolved by the atDirectory; run by
tests/s2s_atsdk.rs.

Usage: atsdk_s2s.py KEYS_DIR ROOT_HOST ROOT_PORT
Prints ATSDK-S2S-OK when every step passed; any failure raises.
"""
import queue
import sys
import threading
import time

from at_client import AtClient
from at_client.common import AtSign
from at_client.common.keys import SharedKey
from at_client.connections import Address
from at_client.connections.notification.atevents import AtEventType
from at_client.util.keysutil import KeysUtil


def step(name):
    print(f"step: {name}", flush=True)


keys_dir, root_host, root_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
KeysUtil.expected_keys_files_location = keys_dir
root = Address(root_host, root_port)
alice, bob = AtSign("@alice"), AtSign("@bob")
alice_events, bob_events = queue.Queue(), queue.Queue()

step("both authenticate with PKAM through the atDirectory")
a = AtClient(alice, root_address=root, queue=alice_events)
b = AtClient(bob, root_address=root, queue=bob_events)
assert a.is_authenticated() and b.is_authenticated()

step("bob's monitor")
threading.Thread(target=b.start_monitor, daemon=True).start()

step("alice shares a value with bob (plookup of bob's public key through alice's server)")
a.put(SharedKey("phone.wavi", alice, bob), "+234 555 0100")
assert a.get(SharedKey("phone.wavi", alice, bob)) == "+234 555 0100"

step("bob reads and decrypts it through bob's server")
assert b.get(SharedKey("phone.wavi", alice, bob)) == "+234 555 0100"

step("alice notifies bob; bob's monitor receives and decrypts it")
notification_id = a.notify(SharedKey("message.wavi", alice, bob), "hello bob")
assert notification_id, notification_id
deadline = time.time() + 90
decrypted = None
while time.time() < deadline and decrypted is None:
    try:
        event = bob_events.get(timeout=1)
    except queue.Empty:
        continue
    if event.event_type == AtEventType.UPDATE_NOTIFICATION:
        if event.event_data["id"] != notification_id:
            continue
        assert event.event_data["key"] == "@bob:message.wavi@alice", event.event_data
        assert event.event_data["from"] == "@alice", event.event_data
        b.handle_event(bob_events, event)
    elif event.event_type == AtEventType.DECRYPTED_UPDATE_NOTIFICATION:
        if event.event_data["id"] == notification_id:
            decrypted = event.event_data["decryptedValue"]
    elif event.event_type == AtEventType.MONITOR_EXCEPTION:
        raise AssertionError(f"monitor exception: {event.event_data}")
assert decrypted == "hello bob", decrypted

print("ATSDK-S2S-OK", flush=True)
