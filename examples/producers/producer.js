// Publish one Hookline event over AMQP with publisher confirms (amqplib).
//
//   npm install            # once, in this directory
//   HOOKLINE_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f node producer.js [event-id]
const amqp = require("amqplib");
const crypto = require("crypto");

async function main() {
  const url = process.env.HOOKLINE_AMQP_URL || "amqp://guest:guest@127.0.0.1:5672/%2f";
  const id = process.argv[2] || `evt_${crypto.randomUUID().replaceAll("-", "")}`;
  const event = {
    id, // fixed before the first try: a retry re-sends the same id
    tenant: "acme",
    type: "lead.created",
    occurred_at: new Date().toISOString(),
    data: { contact: { email: "ada@example.com", first_name: "Ada" } },
  };
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  channel.publish("hookline.events", event.type, Buffer.from(JSON.stringify(event)), {
    contentType: "application/json", persistent: true, messageId: id, mandatory: true,
  });
  await channel.waitForConfirms(); // rejects unless the broker confirmed
  console.log(`confirmed ${id}`);
  await connection.close();
}

main().catch((error) => { console.error(error); process.exit(1); });
