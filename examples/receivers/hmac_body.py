"""Verify a Hookline delivery signed with scheme "hmac" in the seeds' common style,
X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>, with the standard library only.

Input as JSON on stdin, {"headers": {...}, "body": "..."}:  python3 hmac_body.py SECRET < request.json
"""
import hashlib, hmac, json, sys

request = json.load(sys.stdin)
headers = {name.lower(): value for name, value in request["headers"].items()}
body = request["body"].encode()  # the raw bytes as received: never re-serialize the JSON
expected = "sha256=" + hmac.new(sys.argv[1].encode(), body, hashlib.sha256).hexdigest()
if not hmac.compare_digest(expected, headers.get("x-webhook-signature", "")):
    sys.exit("invalid: signature mismatch")
print(f"valid: {json.loads(body)['type']}")
