"""Drives Atsign's Python SDK (atsdk) against an atserver; run by tests/atsdk.rs.

Usage: atsdk_client.py KEYS_DIR ROOT_HOST ROOT_PORT
Prints ATSDK-INTEROP-OK when every step passed; any failure raises.
"""
import queue
import sys
import threading
import time

from at_client import AtClient
from at_client.common import AtSign
from at_client.common.keys import PublicKey, SelfKey, SharedKey
from at_client.connections import Address
from at_client.connections.notification.atevents import AtEventType
from at_client.exception.atexception import AtKeyNotFoundException
from at_client.util.keysutil import KeysUtil


def step(name):
    print(f"step: {name}", flush=True)


keys_dir, root_host, root_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
KeysUtil.expected_keys_files_location = keys_dir
alice = AtSign("@alice")
events = queue.Queue()

step("PKAM authentication through the root")
client = AtClient(alice, root_address=Address(root_host, root_port), queue=events)
assert client.is_authenticated()

step("public data")
client.put(PublicKey("location.wavi", alice), "Lagos, Nigeria")
assert client.get(PublicKey("location.wavi", alice)) == "Lagos, Nigeria"

step("self data (encrypted, ivNonce round trip)")
client.put(SelfKey("phone.wavi", alice), "+234 555 0100")
assert client.get(SelfKey("phone.wavi", alice)) == "+234 555 0100"

step("scan")
listed = [str(k) for k in client.get_at_keys(".*wavi", True)]
assert "public:location.wavi@alice" in listed, listed
assert "phone.wavi@alice" in listed, listed
everything = [str(k) for k in client.get_at_keys("", False)]
assert len(everything) >= len(listed), everything

step("delete")
client.delete(SelfKey("phone.wavi", alice))
try:
    client.get(SelfKey("phone.wavi", alice))
    raise AssertionError("deleted key still readable")
except AtKeyNotFoundException:
    pass

step("monitor receives a notification to our own atSign")
threading.Thread(target=client.start_monitor, daemon=True).start()
notification_id = client.notify(SharedKey("message.wavi", alice, alice), "hello me")
assert notification_id, notification_id
deadline = time.time() + 60
decrypted = None
while time.time() < deadline and decrypted is None:
    try:
        event = events.get(timeout=1)
    except queue.Empty:
        continue
    if event.event_type == AtEventType.UPDATE_NOTIFICATION:
        assert event.event_data["id"] == notification_id, event.event_data
        assert event.event_data["key"] == "@alice:message.wavi@alice", event.event_data
        client.handle_event(events, event)
    elif event.event_type == AtEventType.DECRYPTED_UPDATE_NOTIFICATION:
        decrypted = event.event_data["decryptedValue"]
    elif event.event_type == AtEventType.MONITOR_EXCEPTION:
        raise AssertionError(f"monitor exception: {event.event_data}")
assert decrypted == "hello me", decrypted

print("ATSDK-INTEROP-OK", flush=True)
