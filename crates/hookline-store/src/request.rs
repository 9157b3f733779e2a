//! The one rule by which a task takes its subscription's delivery options:
//! fanout applies it to every matched event, the api to test sends and
//! previews, so a preview shows exactly what fanout would send.

use bytes::Bytes;
use hookline_proto::DeliveryTask;
use hookline_render::{DeliveryPlan, Limits};
use serde_json::Value;

/// Fills in the task's method, body, content type and query from `plan`.
/// `envelope` is the standard body as a value (the templates' context),
/// `standard` the same body encoded, shared by every task of the event that
/// sends it unchanged. A render that fails (out of fuel, over the limit, an
/// error in the template) is not sent: the task carries the standard body and
/// the reason in `render_error`, and the deliverer records a failed attempt
/// and parks it.
pub fn apply_plan(
    task: &mut DeliveryTask,
    plan: Option<&DeliveryPlan>,
    envelope: &Value,
    standard: &Bytes,
) {
    let Some(plan) = plan.filter(|plan| !plan.sends_standard_body()) else {
        task.body = standard.clone();
        return;
    };
    match plan.request(envelope, Limits::default()) {
        Ok(request) => {
            task.method = request.method.as_str().to_string();
            task.content_type = request.content_type.to_string();
            task.query = request.query;
            task.body = request.body.into();
        }
        Err(error) => {
            task.body = standard.clone();
            task.render_error = error.to_string();
        }
    }
}
