//! A backend route that emits `lead.created` as part of handling a request,
//! answering only once Hookline holds the event: one shared publisher in
//! the application state.
//!
//! ```sh
//! cargo run -p hookline-client --example axum_producer
//! curl -X POST localhost:3000/leads -H 'content-type: application/json' -d '{"email":"ada@example.com"}'
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookline_client::{AmqpOptions, AmqpPublisher, Event, Publisher};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("HOOKLINE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let publisher: Arc<dyn Publisher> = Arc::new(AmqpPublisher::new(url, AmqpOptions::default()));
    let app = Router::new()
        .route("/leads", post(create_lead))
        .with_state(publisher);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn create_lead(
    State(publisher): State<Arc<dyn Publisher>>,
    Json(lead): Json<Value>,
) -> (StatusCode, Json<Value>) {
    // Store the lead first in a real backend, and use its id as the event
    // id: a request retried after a crash then publishes the same event.
    let event = match Event::builder("acme", "lead.created").data(&lead).build() {
        Ok(event) => event,
        Err(error) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": error.to_string()})),
            )
        }
    };
    match publisher.publish(&event).await {
        Ok(published) => (StatusCode::CREATED, Json(json!({"event_id": published.id}))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": error.to_string(), "retry": error.may_retry()})),
        ),
    }
}
