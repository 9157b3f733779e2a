"""Verify a Hookline delivery (scheme "standard") with the standardwebhooks package.

In a handler, pass the raw body and the request headers. Here they come as
JSON on stdin, {"headers": {...}, "body": "..."}:  python3 standard_webhooks.py whsec_... < request.json
"""
import json, sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
try:
    # Checks the signature (either one during a rotation) and that the timestamp is within 5 minutes.
    event = Webhook(sys.argv[1]).verify(request["body"], request["headers"])
except WebhookVerificationError as error:
    sys.exit(f"invalid: {error}")
print(f"valid: {event['type']} {event['id']}")
