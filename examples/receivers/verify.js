// Verify a Hookline delivery (scheme "standard") with Node's crypto only.
// Input as JSON on stdin, {"headers": {...}, "body": "..."}:  node verify.js whsec_... < request.json
const crypto = require("crypto");

const request = JSON.parse(require("fs").readFileSync(0, "utf8"));
const h = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
const key = Buffer.from(process.argv[2].replace(/^whsec_/, ""), "base64");
const signed = `${h["webhook-id"]}.${h["webhook-timestamp"]}.${request.body}`;
const expected = Buffer.from(crypto.createHmac("sha256", key).update(signed).digest("base64"));
// During a secret rotation two signatures arrive, space-separated: either may match.
const match = (h["webhook-signature"] || "").split(" ").some((sig) => {
  const given = Buffer.from(sig.replace(/^v1,/, ""));
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
});
const fresh = Math.abs(Date.now() / 1000 - Number(h["webhook-timestamp"])) <= 300;
if (!match || !fresh) { console.log(match ? "invalid: stale timestamp" : "invalid: signature mismatch"); process.exit(1); }
console.log(`valid: ${JSON.parse(request.body).type}`);
