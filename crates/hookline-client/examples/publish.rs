//! A plain `main` that publishes one event and exits once Hookline holds it.
//!
//! ```sh
//! cargo run -p hookline-client --example publish -- amqp://guest:guest@127.0.0.1:5672/%2f
//! cargo run -p hookline-client --example publish -- http://127.0.0.1:8080
//! ```

use hookline_client::Event;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let token = std::env::var("HOOKLINE_INGEST_TOKEN").ok();
    // The transport comes from configuration: the code below is the same.
    let publisher = hookline_client::from_url(&url, token)?;
    let event = Event::builder("acme", "lead.created")
        .data(&json!({"contact": {"email": "ada@example.com", "first_name": "Ada"}}))
        .build()?;
    let published = publisher.publish(&event).await?;
    println!("confirmed {}", published.id);
    Ok(())
}
