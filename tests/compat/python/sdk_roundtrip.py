#!/usr/bin/env python3
"""Drive herald with pusher-http-python (PyPI `pusher`) and print the results as JSON.

Connection settings come from the environment:
  HERALD_HOST (127.0.0.1), HERALD_PORT (6001), APP_ID (1; pusher-http-python only accepts numeric app ids), APP_KEY (app-key), APP_SECRET (app-secret)
  HERALD_SSL=1: https (ssl=True). The SDK verifies against the CA bundle it ships (its own
  cacert.pem, whatever REQUESTS_CA_BUNDLE says), so a private CA in REQUESTS_CA_BUNDLE is passed
  to it through its backend parameter (CaBundleBackend below).

Modes:
  sdk_roundtrip.py roundtrip
      trigger + trigger_batch on the channels below, then channels / channel / users queries.
      Prints {"trigger": ..., "batch": ..., "channels": ..., ...} on one line.
  sdk_roundtrip.py trigger CHANNEL EVENT JSON_DATA
      One trigger of EVENT on CHANNEL with the decoded JSON_DATA; prints the SDK's result.
      A refusal (HTTP 4xx) exits non-zero with the SDK's exception on stderr.
  sdk_roundtrip.py auth SOCKET_ID CHANNEL [USER_ID [NAME]]
      Prints the SDK's channel authorization (json.dumps spacing in channel_data, as Python emits it).

The pusher-http-python SDK sends body_md5 on every request, GET included, which is what this
script proves against herald (PROTOCOL.md 10.2, 14 row 7).
"""
import json
import os
import sys
import time
import urllib.parse

import pusher
import requests
from pusher.http import Request, GET
from pusher.requests import RequestsBackend

PUBLIC = os.environ.get("PY_PUBLIC_CHANNEL", "py-public")
PRESENCE = os.environ.get("PY_PRESENCE_CHANNEL", "presence-py")


class CaBundleBackend(RequestsBackend):
    """The SDK's requests backend, verifying against REQUESTS_CA_BUNDLE instead of the SDK's own
    bundle (which it sets whenever ssl=True)."""

    def __init__(self, client, **options):
        super().__init__(client, **options)
        if client.ssl and os.environ.get("REQUESTS_CA_BUNDLE"):
            self.options["verify"] = os.environ["REQUESTS_CA_BUNDLE"]


def client():
    ssl = os.environ.get("HERALD_SSL") == "1"
    return pusher.Pusher(
        app_id=os.environ.get("APP_ID", "1"),
        key=os.environ.get("APP_KEY", "app-key"),
        secret=os.environ.get("APP_SECRET", "app-secret"),
        host=os.environ.get("HERALD_HOST", "127.0.0.1"),
        port=int(os.environ.get("HERALD_PORT", "6001")),
        ssl=ssl,
        timeout=5,
        backend=CaBundleBackend,
    )


def percent_encoded_channel_info(p, channel, attributes):
    """GET /channels/{channel}?info=a%2Cb — the SDK's own signature (over the decoded value),
    but the query string percent-encoded the way PHP/Guzzle and many URL libraries send it."""
    client_ = p._pusher_client
    req = Request(client_, GET, "/apps/%s/channels/%s" % (client_.app_id, channel),
                  {"info": ",".join(attributes)})
    url = "http://%s:%s%s?%s" % (client_.host, client_.port, req.path, urllib.parse.urlencode(req.query_params))
    r = requests.get(url, timeout=5)
    return {"url_query": url.split("?", 1)[1], "status": r.status_code, "body": r.json() if r.status_code == 200 else r.text}


def roundtrip():
    p = client()
    out = {}
    out["trigger"] = p.trigger(PUBLIC, "py-event", {"from": "python", "n": 1})
    out["batch"] = p.trigger_batch([
        {"channel": PUBLIC, "name": "py-batch-1", "data": {"n": 1}},
        {"channel": PRESENCE, "name": "py-batch-2", "data": "plain string from python"},
    ])
    out["channels"] = p.channels_info()
    out["presence_channels"] = p.channels_info(prefix_filter="presence-", attributes=["user_count"])
    out["channel"] = p.channel_info(PRESENCE, attributes=["user_count", "subscription_count"])
    out["public_channel"] = p.channel_info(PUBLIC, attributes=["subscription_count"])
    out["users"] = p.users_info(PRESENCE)
    out["channel_percent_encoded"] = percent_encoded_channel_info(p, PRESENCE, ["user_count", "subscription_count"])
    out["timestamp"] = int(time.time())
    print(json.dumps(out, sort_keys=True))


def trigger(channel, event, data):
    print(json.dumps(client().trigger(channel, event, json.loads(data))))


def auth(socket_id, channel, user_id=None, name=None):
    p = client()
    custom = None
    if user_id is not None:
        custom = {"user_id": user_id, "user_info": {"name": name or user_id}}
    print(json.dumps(p.authenticate(channel=channel, socket_id=socket_id, custom_data=custom)))


def main(argv):
    if len(argv) >= 2 and argv[1] == "roundtrip":
        roundtrip()
    elif len(argv) == 5 and argv[1] == "trigger":
        trigger(*argv[2:5])
    elif len(argv) >= 4 and argv[1] == "auth":
        auth(*argv[2:6])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
