#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/ (docs/FUZZING.md).

The seeds are real messages: the test vectors of docs/PROTOCOL.md (6.5, 6.6, 10.9, 11.4), frames
the integration tests send, and herald.example.toml. The fuzzer starts from them; the committed
corpora (fuzz/corpus/) are what `cargo fuzz cmin` kept of its runs. Input formats are described
in crates/herald/src/fuzzing/ (NUL-separated fields).
"""
import hashlib, hmac, json, os, pathlib

ROOT = pathlib.Path(__file__).resolve().parent
KEY, SECRET = "278d425bdf160c739803", "7ad3773142a6692b25b8"
SID = "123456.7890123"


def write(target, seeds):
    d = ROOT / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        b = s.encode() if isinstance(s, str) else s
        (d / hashlib.sha1(b).hexdigest()).write_bytes(b)


def sign(text, secret=SECRET):
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


frames = [
    '{"event":"pusher:ping"}',
    '{"event":"pusher:ping","data":{}}',
    '{"event":"pusher:ping","data":"{}"}',
    '{"event":"pusher:pong","data":{}}',
    '{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}',
    '{"event":"pusher:subscribe","data":{"channel":"my-channel"}}',
    '{"event":"pusher:subscribe","data":"{\\"channel\\":\\"private-x\\",\\"auth\\":\\"k:s\\"}"}',
    '{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\\"user_id\\": \\"u-1\\", \\"user_info\\": {\\"name\\": \\"Ada\\"}}","channel":"presence-room"}}',
    '{"event":"pusher:subscribe","data":{"channel":"presence-r","auth":"k:s","channel_data":{"user_id": "u", "b":1}}}',
    '{"event":"pusher:subscribe","data":{"channel":"presence-r","auth":"k:s","channel_data":"{\\"user_id\\":10}"}}',
    '{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}',
    '{"event":"pusher:signin","data":{"auth":"k:33a6","user_data":"{\\"id\\":\\"u-1\\",\\"user_info\\":{\\"name\\":\\"Ada\\"},\\"watchlist\\":[\\"u-2\\",\\"u-3\\"]}"}}',
    '{"event":"client-typing","data":{ "typing" : true, "a": [1, 2] },"channel":"presence-room"}',
    '{"event":"client-x","channel":"private-a","data":"{\\"typing\\": true}"}',
    '{"event":"client-x","channel":"private-a","data":42}',
    '{"event":"pusher:foo","data":[]}',
    '{"event":"pusher_internal:subscription_succeeded"}',
    '{"event":"foo","channel":"private-a","data":{}}',
    '{"data":{}}', '["pusher:ping"]', "null", "{",
]
write("inbound_message", frames)

names = ["my-channel", "private-orders.42", "presence-room", "private-encrypted-vault",
         "private-encrypted-cache-x", "private-cache-x", "presence-cache-x", "cache-x",
         "#server-to-user-u-1", "#server-to-user-", "private-AZaz09_-=@,.;", "a b", "é",
         "App\\Events\\OrderShipped", "order.shipped", "pusher:foo", "pusher_internal:member_added",
         "client-typing", SID, "1234.1234", "007.0", "4294967296.1", "1.18446744073709551616", "1."]
write("names", [bytes([200]) + n.encode() for n in names] + [bytes([5]) + b"private-x"])

ca = []
for flags, ch, cd, text in [
    (0, "private-orders.42", None, f"{SID}:private-orders.42"),
    (2, "presence-room", '{"user_id":"u-1","user_info":{"name":"Ada"}}',
     f'{SID}:presence-room:{{"user_id":"u-1","user_info":{{"name":"Ada"}}}}'),
    (2, "presence-room", '{"user_id": "u-1", "user_info": {"name": "Ada"}}',
     f'{SID}:presence-room:{{"user_id": "u-1", "user_info": {{"name": "Ada"}}}}'),
    (0, "private-encrypted-vault", None, f"{SID}:private-encrypted-vault"),
    (1, "presence-room", None, f"{SID}:presence-room"),
    (0, "my-channel", None, f"{SID}:my-channel"),
]:
    auth = f"{KEY}:{sign(text)}"
    ud = '{"id":"u-1","user_info":{"name":"Ada"},"watchlist":["u-2","u-3"]}'
    ca.append(bytes([flags]) + "\0".join([SID, ch, cd or "", auth, ud]).encode())
ud = '{"id":"u-1","user_info":{"name":"Ada"},"watchlist":["u-2","u-3"]}'
ca.append(bytes([0]) + "\0".join([SID, "private-x", "", f"{KEY}:{sign(f'{SID}::user::{ud}')}", ud]).encode())
write("channel_auth", ca)

api = []
g = ("auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&filter_by_prefix=presence-"
     "&info=user_count&auth_signature=5142c71a4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a")
api.append(b"\0" + f"GET\0/apps/3/channels\0{g}\0".encode())
h = ("auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e"
     "&info=user_count%2Csubscription_count&auth_signature=c510e9ddac97883185422c26f67b3d837134cddcdc1af8f6e93a6b6b6d1ea28c")
api.append(b"\0" + f"GET\0/apps/3/channels/presence-room\0{h}\0".encode())
for path, body, flags in [
    ("/apps/3/events", '{"name":"notice","data":"{\\"text\\":\\"hi\\"}","channels":["#server-to-user-u-1"]}', 0),
    ("/apps/3/events", '{"name":"my-event","data":"{\\"message\\":\\"hello world\\"}","channels":["my-channel","presence-room"],"socket_id":"1234.1234","info":"user_count"}', 0),
    ("/apps/3/batch_events", '{"batch":[{"channel":"my-channel","name":"my-event","data":"{\\"x\\":1}"},{"channel":"presence-room","name":"e2","data":"{}","info":"user_count"}]}', 2),
    ("/apps/3/users/u-1/terminate_connections", "{}", 0),
]:
    md5 = hashlib.md5(body.encode()).hexdigest()
    q = f"auth_key={KEY}&auth_timestamp=1700000000&auth_version=1.0&body_md5={md5}"
    sig = sign(f"POST\n{path}\n{q}")
    api.append(bytes([flags]) + f"POST\0{path}\0{q}&auth_signature={sig}\0{body}".encode())
    api.append(bytes([flags]) + f"POST\0{path}\0\0{body}".encode())
write("api_auth", api)

# Two connections (op bit 0); "$" auth is signed by the harness; op 0x40 reconnects.
def script(steps):
    return b"\0".join(bytes([op]) + t.encode() for op, t in steps)
pres = lambda uid: json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-room", "auth": "$",
                               "channel_data": json.dumps({"user_id": uid, "user_info": {"name": uid}})}})
signin = lambda uid, wl: json.dumps({"event": "pusher:signin", "data": {"auth": "$",
                                     "user_data": json.dumps({"id": uid, "watchlist": wl})}})
sub = lambda ch, auth=None: json.dumps({"event": "pusher:subscribe", "data": {"channel": ch, **({"auth": auth} if auth else {})}})
ws = [
    script([(0, sub("my-channel")), (1, sub("my-channel")), (0, '{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}')]),
    script([(0, pres("u-1")), (1, pres("u-2")), (0, '{"event":"client-typing","channel":"presence-room","data":{"t":1}}'), (0x40, "")]),
    script([(0, signin("u-1", ["u-2"])), (1, signin("u-2", ["u-1"])), (0, sub("presence-room", "$")), (0x41, "")]),
    script([(0, sub("private-orders.42", "$")), (1, sub("private-orders.42", "k:bad")), (0, '{"event":"client-x","channel":"private-orders.42","data":"x"}')]),
    script([(0, sub("cache-prices")), (1, sub("private-encrypted-vault", "$")), (0, sub("#server-to-user-u-1")), (1, '{"event":"pusher:ping"}')]),
    script([(0, f) for f in frames]),
]
write("ws_session", ws)

def ws_frame(payload, opcode=1, fin=True, mask=b"\x01\x02\x03\x04"):
    b = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    b += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return b + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
write("ws_frames", [
    ws_frame(sub("my-channel").encode()) + ws_frame(b'{"event":"pusher:ping"}'),
    ws_frame(pres("u-1").replace('"$"', '"k:s"').encode()) + ws_frame(b"", opcode=9) + ws_frame(b"\x03\xe8", opcode=8),
    ws_frame(b'{"event":"pusher:', fin=False) + ws_frame(b'ping"}', opcode=0),
    ws_frame(b"\xff\xfe"), ws_frame(b"x" * 1100), ws_frame(b"ping", opcode=10),
])

cw = [
    b'{"t":"e","n":7,"x":"1.2"}\n{"event":"e","data":"a\\nb"}',
    b'{"t":"e","n":7,"c":{"e":"price","d":"{\\"usd\\":7}","t":60000}}\n{}',
    b'{"t":"j","n":3,"u":"u-1","i":"{\\"name\\":\\"Ada\\"}"}\n', b'{"t":"l","n":3,"u":"u-1"}\n',
    b'{"t":"k","n":3,"c":12}\n', b'{"t":"gone","n":9}', b'{"t":"term","a":"app-1","u":"u-1"}',
    b'{"t":"user","a":"app-1","u":"u-1","on":true}', b"price\0a\nb", b"herald:c:app-1:presence-a:b",
    b"app-1/private-x:y",
]
write("cluster_wire", cw)

example = (ROOT.parent / "herald.example.toml").read_bytes()
write("config_toml", [example, b'port = 7000\n[[apps]]\nid = "a"\nkey = "k"\nsecret = "s"\n',
    b'[[apps]]\nid = "a"\nkey = "k"\nsecret = "s"\n[[apps.webhooks]]\nurl = "https://example.com/hook"\nevent_types = ["channel_occupied"]\n',
    b'[adapter]\ndriver = "redis"\nurl = "redis://127.0.0.1:6379"\n', b'port = "x"\n', b'[[apps]]\nid = 5\n'])

def ev(op, step, *fields):
    return bytes([op, step]) + "\0".join(fields).encode() + b"\0"
wh = [
    bytes([0, 3, 0x7f]) + b"\0\0" + bytes([0x7f]) + b"presence-\0\0" + b"1700000000123\0"
    + ev(2, 0, "presence-room", "u-1") + ev(0, 0, "my-channel") + ev(3, 1, "presence-room", "u-1")
    + ev(4, 1, "presence-room", "client-typing", '{"typing":true}', SID, "u-1") + ev(6, 1, "my-channel", "3"),
    bytes([30, 1, 0x03]) + b"\0\0" + bytes([0x0c]) + b"\0room\0" + b"1\0"
    + ev(1, 0, "c") + ev(0, 1, "c") + ev(3, 0, "presence-room", "u") + ev(2, 1, "presence-room", "u") + ev(5, 200, "cache-x"),
]
write("webhook_payload", wh)
print("seeds written to", ROOT / "seeds")
