"""Publish one Hookline event over AMQP with publisher confirms (pika).

    HOOKLINE_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f python3 producer.py [event-id]
"""
import json, os, sys, uuid
from datetime import datetime, timezone

import pika

url = os.environ.get("HOOKLINE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
event_id = sys.argv[1] if len(sys.argv) > 1 else f"evt_{uuid.uuid4().hex}"
event = {
    "id": event_id,  # fixed before the first try: a retry re-sends the same id
    "tenant": "acme",
    "type": "lead.created",
    "occurred_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    "data": {"contact": {"email": "ada@example.com", "first_name": "Ada"}},
}
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.confirm_delivery()  # basic_publish now raises unless the broker confirms
channel.basic_publish(
    exchange="hookline.events",
    routing_key=event["type"],
    body=json.dumps(event).encode(),
    properties=pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=event_id),
    mandatory=True,  # an event no queue takes raises UnroutableError instead of vanishing
)
print(f"confirmed {event_id}")
connection.close()
