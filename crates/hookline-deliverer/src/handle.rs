//! What happens to one delivery task: send it, then ack, retry or park.

use std::sync::Arc;

use chrono::Utc;
use hookline_amqp::names::{wait_queue, OUTCOMES_EXCHANGE};
use hookline_amqp::{protobuf_properties, AmqpError, ConfirmedPublisher};
use hookline_config::format_duration;
use hookline_model::retry::{Classification, RetryPolicy};
use hookline_model::trace::TraceParent;
use hookline_proto::{AttemptRecord, AttemptStatus, DeliveryTask, Message, SCHEMA_VERSION};
use hookline_runtime::telemetry::continue_trace;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::admission::Admission;
use crate::attempts::RecordSink;
use crate::consume::Origin;
use crate::endpoints::{permit_hold, release_after};
use crate::metrics::Metrics;
use crate::outcome::{decide, decide_challenge, NextHop};
use crate::revisions::Verdict;
use hookline_send::record::{attempt_record, attempt_view, status_name};
use hookline_send::{SendResult, Sender};

/// Everything needed to handle tasks on one broker session.
pub struct Handler {
    /// The HTTP side.
    pub sender: Sender,
    /// `delivery.retry_delays`, which [`crate::outcome::decide`] climbs.
    pub policy: RetryPolicy,
    /// Confirmed publishes for retries, dead letters and outcomes.
    pub publisher: ConfirmedPublisher,
    /// Attempt records, batched to `hookline.attempts` for the api's history.
    pub records: RecordSink,
    /// The contract's deliverer metrics.
    pub metrics: Metrics,
    /// Publish successes to `hookline.outcomes` too.
    pub publish_successes: bool,
    /// Per-subscription admission (in-flight cap, short local line).
    pub gates: crate::admission::Gates,
    /// Subscriptions deleted or disabled meanwhile.
    pub revisions: crate::revisions::Revisions,
    /// Moves tasks of saturated subscriptions into their slow lanes.
    pub lanes: crate::lanes::Diverter,
    /// Moves tasks with an endpoint policy into their endpoint queue.
    pub endpoints: crate::endpoints::Router,
    /// `/readyz`: turns red while tasks arrive that no key opens.
    pub readiness: hookline_runtime::Readiness,
    /// `delivery.max_batch_bytes`: a batch body never grows past it.
    pub max_batch_bytes: usize,
    /// Cancelled on shutdown: a task that has not started sending by then
    /// goes back to the queue for another deliverer.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// What the consumer does with the message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The next hop is confirmed: ack.
    Ack,
    /// A publish failed (broker trouble): leave it for redelivery.
    Requeue,
}

/// The worker slots a send must hold: the deliverer-wide pool, and for
/// retries also the retry share.
pub struct Slots {
    /// Every send holds one of these.
    pub all: Arc<Semaphore>,
    /// Retries also hold one of these, so they cannot take every slot.
    pub own: Option<Arc<Semaphore>>,
}

/// What became of a task once an attempt's outcome is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Delivered, on the ladder, parked or dropped: ack it.
    Settled,
    /// A FIFO head failed: send it again after `delay`, as `attempt`,
    /// without letting go of it.
    RetryInPlace {
        delay: std::time::Duration,
        attempt: u32,
    },
}

/// The longest a FIFO head waits in place between attempts. It is held
/// unacked meanwhile, and RabbitMQ closes a channel whose delivery stays
/// unacked past its `consumer_timeout` (30 minutes by default), so the
/// ladder's longer rungs are shortened to this for ordered subscriptions:
/// their stream is blocked while the head waits, and hours of that help
/// nobody.
pub const FIFO_MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The readiness entry for "tasks arriving can be opened with our keys".
pub(crate) const KEYS: &str = "sealing_keys";

impl Handler {
    /// Handles one raw message from a deliveries queue, taken from `origin`:
    /// a task from its slow lane or endpoint queue waits its turn there
    /// instead of being moved again.
    pub async fn handle(
        &self,
        payload: &[u8],
        properties: &BasicProperties,
        slots: &Slots,
        origin: &Origin,
    ) -> Disposition {
        let headers = properties.headers().as_ref();
        if crate::batches::is_batch(properties) {
            return crate::batches::retried(self, payload, headers, slots, origin).await;
        }
        let mut task = match self.admit(payload, headers).await {
            Ok(task) => task,
            Err(disposition) => return disposition,
        };
        let immediate = task.test || !task.challenge_token.is_empty();
        let rule = match origin {
            Origin::Endpoint(rule) => Some(rule.clone()),
            _ if !immediate && task.active_policy().is_some() => {
                return self.to_endpoint_queue(&task).await
            }
            _ => None,
        };
        let patient = !matches!(origin, Origin::Shared);
        loop {
            let (result, trace, span) = match self
                .paced_send(&task, slots, patient, rule.as_deref())
                .await
            {
                Ok(sent) => sent,
                Err(disposition) => return disposition,
            };
            // A FIFO head that fails keeps its place: retried here, unacked,
            // so the broker hands over nothing behind it meanwhile.
            let in_place = rule.is_some() && task.active_policy().is_some_and(|p| p.fifo);
            match self
                .after_send(&task, &result, Some(trace), in_place)
                .instrument(span)
                .await
            {
                Ok(After::Settled) => return Disposition::Ack,
                Ok(After::RetryInPlace { delay, attempt }) => {
                    tokio::select! {
                        _ = tokio::time::sleep(delay.min(FIFO_MAX_HOLD)) => {}
                        // Back to the head of its queue for the next deliverer.
                        _ = self.shutdown.cancelled() => return Disposition::Requeue,
                    }
                    task.attempt = attempt;
                    if self.superseded(&mut task) {
                        return Disposition::Ack;
                    }
                }
                Err(error) => {
                    tracing::warn!(event_id = %task.event_id, subscription_id = %task.subscription_id, attempt = task.attempt, %error, "could not record the attempt's outcome; leaving the task for redelivery");
                    return Disposition::Requeue;
                }
            }
        }
    }

    /// Decodes a task and settles at once what must not be sent: an
    /// undecodable message or a task redelivered too often is parked, a
    /// task of a subscription deleted since is dropped. `Err` is what to do
    /// with the message; `Ok` is the task to send, re-shaped if need be.
    pub(crate) async fn admit(
        &self,
        payload: &[u8],
        headers: Option<&FieldTable>,
    ) -> Result<DeliveryTask, Disposition> {
        let mut task = match DeliveryTask::decode(payload) {
            Ok(task) if task.schema_version == SCHEMA_VERSION => task,
            Ok(task) => {
                return Err(self
                    .park_raw(
                        payload,
                        &format!("unsupported schema_version {}", task.schema_version),
                    )
                    .await)
            }
            Err(e) => {
                return Err(self
                    .park_raw(payload, &format!("not a DeliveryTask: {e}"))
                    .await)
            }
        };
        if let Some(count) = hookline_amqp::redelivered_too_often(headers) {
            let result = crate::outcome::redelivered(count);
            return Err(match self.after_send(&task, &result, None, false).await {
                Ok(_) => Disposition::Ack,
                Err(_) => Disposition::Requeue,
            });
        }
        // A test send or a verification challenge is built by the api from
        // the row as it is now (an unverified subscription is announced as
        // disabled, yet its challenge must go out), and is sent at once:
        // never queued behind the subscription's events, nor paced.
        let immediate = task.test || !task.challenge_token.is_empty();
        if !immediate && self.superseded(&mut task) {
            return Err(Disposition::Ack);
        }
        Ok(task)
    }

    /// Applies the newest known change of the task's subscription: true when
    /// the subscription was deleted or disabled since (drop the task), else
    /// the task is re-shaped to it if need be.
    pub(crate) fn superseded(&self, task: &mut DeliveryTask) -> bool {
        match self.revisions.check(task) {
            Verdict::Drop => {
                self.metrics
                    .superseded
                    .with_label_values(&["dropped"])
                    .inc();
                tracing::info!(event_id = %task.event_id, subscription_id = %task.subscription_id, attempt = task.attempt, outcome = "dropped", "subscription deleted or disabled after this task was made; task dropped");
                true
            }
            Verdict::Reshaped => {
                self.metrics
                    .superseded
                    .with_label_values(&["reshaped"])
                    .inc();
                tracing::debug!(event_id = %task.event_id, subscription_id = %task.subscription_id, revision = task.revision, "task re-shaped to its subscription's newest revision");
                false
            }
            Verdict::Current => false,
        }
    }

    /// [`Self::send_once`] under `rule`'s rate: the permit is waited for
    /// first, holding no worker slot (the rest of the queue waits in the
    /// broker, prefetch being one window's worth), and handed back after
    /// the send as [`permit_hold`] says.
    pub(crate) async fn paced_send(
        &self,
        task: &DeliveryTask,
        slots: &Slots,
        patient: bool,
        rule: Option<&crate::endpoints::EndpointRule>,
    ) -> Result<(SendResult, TraceParent, tracing::Span), Disposition> {
        let permit = match rule.and_then(|r| r.pacer.as_ref()) {
            Some(pacer) => tokio::select! {
                permit = pacer.acquire() => Some(permit),
                _ = self.shutdown.cancelled() => return Err(Disposition::Requeue),
            },
            None => None,
        };
        let sent = self.send_once(task, slots, patient).await?;
        if let Some(permit) = permit {
            release_after(
                permit,
                permit_hold(sent.0.response_status, sent.0.retry_after),
            );
        }
        Ok(sent)
    }

    /// One send of `task` once its subscription admits it and a worker slot
    /// is free: the result, the attempt's trace and span. `Err` is what to
    /// do with the message instead (moved to the slow lane, or requeued at
    /// shutdown).
    pub(crate) async fn send_once(
        &self,
        task: &DeliveryTask,
        slots: &Slots,
        patient: bool,
    ) -> Result<(SendResult, TraceParent, tracing::Span), Disposition> {
        let admission = if patient {
            self.gates.admit_patiently(&task.subscription_id).await
        } else {
            self.gates.admit(&task.subscription_id).await
        };
        let ticket = match admission {
            Admission::Admitted(ticket) => ticket,
            // Only a closed gate refuses a patient task: it stays where it
            // is (its own queue keeps its order and its policy).
            Admission::Defer if patient => return Err(Disposition::Requeue),
            Admission::Defer if self.lanes.has_room(&task.subscription_id) => {
                return Err(self.defer(task).await)
            }
            // Every lane this deliverer may consume is taken: wait here,
            // holding no worker slot, rather than in a lane nobody reads.
            Admission::Defer => match self.gates.admit_patiently(&task.subscription_id).await {
                Admission::Admitted(ticket) => ticket,
                Admission::Defer => return Err(self.defer(task).await),
            },
        };
        // Worker slots are taken only once the subscription admits the
        // send: a task waiting on a busy endpoint holds none.
        let own = match &slots.own {
            Some(own) => own.clone().acquire_owned().await.ok(),
            None => None,
        };
        let slot = slots.all.clone().acquire_owned().await.ok();
        if self.shutdown.is_cancelled() {
            return Err(Disposition::Requeue);
        }
        // The attempt's span: a child of fanout's (every attempt of a task,
        // retries included, is a sibling under it), its context sent as the
        // webhook's `traceparent` and kept in the attempt record.
        let span = tracing::info_span!(
            "deliverer.attempt",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            hookline.tenant = %task.tenant,
            hookline.event_id = %task.event_id,
            hookline.subscription_id = %task.subscription_id,
            hookline.attempt = task.attempt,
            hookline.outcome = tracing::field::Empty,
            hookline.status_class = tracing::field::Empty,
            hookline.retry_delay = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        let trace = continue_trace(&span, TraceParent::parse(&task.traceparent));
        self.metrics.inflight.inc();
        let result = self.sender.send(task, trace).instrument(span.clone()).await;
        self.metrics.inflight.dec();
        ticket.finished(result.duration);
        // The endpoint and the worker slot are free again: waiting for the
        // broker's confirms afterwards must not hold back the next send.
        drop((ticket, slot, own));
        Ok((result, trace, span))
    }

    /// The task's subscription has an endpoint policy: move the task to its
    /// endpoint queue (a retry from the ladder, a replay), where it waits
    /// its turn under the policy.
    async fn to_endpoint_queue(&self, task: &DeliveryTask) -> Disposition {
        match self.endpoints.route(task).await {
            Ok(()) => {
                self.metrics.to_endpoint_queues.inc();
                Disposition::Ack
            }
            Err(error) => {
                tracing::warn!(subscription_id = %task.subscription_id, %error, "could not move a task into its endpoint queue; leaving it for redelivery");
                Disposition::Requeue
            }
        }
    }

    /// The subscription is saturated: move the task into its slow lane
    /// (the attempt number is unchanged), where it waits without holding a
    /// worker slot or being taken and put back again.
    async fn defer(&self, task: &DeliveryTask) -> Disposition {
        match self.lanes.divert(task).await {
            Ok(()) => {
                self.metrics.deferred.inc();
                Disposition::Ack
            }
            Err(error) => {
                tracing::warn!(subscription_id = %task.subscription_id, %error, "could not move a task into its slow lane; leaving it for redelivery");
                Disposition::Requeue
            }
        }
    }

    /// The next hop for this attempt, then its history record. Returning Ok
    /// means every publish was confirmed: this is where at-least-once is
    /// decided, since the caller acks the task only then. `trace` is the
    /// attempt's span (none when nothing was sent), whose fields are
    /// filled in here.
    async fn after_send(
        &self,
        task: &DeliveryTask,
        result: &SendResult,
        trace: Option<TraceParent>,
        in_place: bool,
    ) -> Result<After, AmqpError> {
        let now = Utc::now();
        let challenge = !task.challenge_token.is_empty();
        let echoed = challenge
            && result.classification == Classification::Succeeded
            && hookline_model::verification::answer_holds(&result.answer, &task.challenge_token);
        let hop = if challenge {
            decide_challenge(result, echoed)
        } else {
            decide(task.attempt, result, &self.policy)
        };
        let span = tracing::Span::current();
        match result.classification {
            Classification::Succeeded if !task.test => {
                let lag = (now.timestamp_millis() - task.occurred_at_ms).max(0) as f64 / 1000.0;
                self.metrics.event_to_delivery.observe(lag);
            }
            Classification::Unsendable => {
                self.metrics.unopenable.inc();
                self.readiness.set(KEYS, false);
                tracing::error!(event_id = %task.event_id, subscription_id = %task.subscription_id, error = ?result.error, "a task's credentials do not open with the configured keys; parking it as a dead letter (replay it once the keys are fixed)");
            }
            Classification::Redelivered => {
                tracing::error!(event_id = %task.event_id, subscription_id = %task.subscription_id, error = ?result.error, "parking a task redelivered too often as a dead letter");
            }
            _ => {}
        }
        let mut after = After::Settled;
        match hop {
            NextHop::Delivered | NextHop::Gone | NextHop::Unanswered => {}
            NextHop::Retry { delay, attempt } if in_place => {
                after = After::RetryInPlace { delay, attempt };
                let delay = format_duration(delay.min(FIFO_MAX_HOLD));
                span.record("hookline.retry_delay", delay.as_str());
                self.metrics.retries.with_label_values(&[&delay]).inc();
            }
            NextHop::Retry { delay, attempt } => {
                let mut next = task.clone();
                next.attempt = attempt;
                self.publisher
                    .publish_confirmed(
                        "",
                        &wait_queue(delay),
                        &next.encode_to_vec(),
                        protobuf_properties(),
                    )
                    .await?;
                let delay = format_duration(delay);
                span.record("hookline.retry_delay", delay.as_str());
                self.metrics.retries.with_label_values(&[&delay]).inc();
            }
            NextHop::Park => self.park_dead(task, result, now).await?,
        }
        let status = hop.status();
        let mut record = attempt_record(task, result, status, now);
        record.traceparent = trace.map(|t| t.to_string()).unwrap_or_default();
        record.challenge_echoed = echoed;
        if challenge && !echoed && result.classification == Classification::Succeeded {
            record.error = format!(
                "the endpoint answered {} without the verification token; answer with the token as \
                 plain text or as {{\"token\": \"…\"}}",
                result.response_status.unwrap_or(200)
            );
        }
        self.report(task, result, status, record).await?;
        Ok(after)
    }

    /// The metrics, log line, outcome broadcast and history record of one
    /// attempt of `task` that ended as `status`: Ok once the broadcast and
    /// the record are confirmed.
    pub(crate) async fn report(
        &self,
        task: &DeliveryTask,
        result: &SendResult,
        status: AttemptStatus,
        record: AttemptRecord,
    ) -> Result<(), AmqpError> {
        let span = tracing::Span::current();
        if result.classification != Classification::Unsendable {
            self.readiness.set(KEYS, true);
        }
        let outcome = status_name(status);
        span.record("hookline.outcome", outcome);
        span.record("hookline.status_class", result.status_class.as_str());
        if let Some(code) = result.response_status {
            span.record("http.response.status_code", code);
        }
        let ok = status == AttemptStatus::Succeeded;
        span.record("otel.status_code", if ok { "ok" } else { "error" });
        self.metrics
            .deliveries
            .with_label_values(&[outcome, result.status_class.as_str()])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[outcome])
            .observe(result.duration.as_secs_f64());
        tracing::info!(
            event_id = %task.event_id,
            subscription_id = %task.subscription_id,
            attempt = task.attempt,
            outcome,
            response_status = result.response_status,
            duration_ms = result.duration.as_millis() as u64,
            "delivery attempt finished"
        );
        if status != AttemptStatus::Succeeded || self.publish_successes {
            let body = serde_json::to_vec(&attempt_view(&record)).unwrap_or_default();
            let key = format!("{outcome}.{}", task.event_type);
            let properties =
                BasicProperties::default().with_content_type("application/json".into());
            self.publisher
                .broadcast(OUTCOMES_EXCHANGE, &key, &body, properties)
                .await?
                .confirmed()
                .await?;
        }
        self.records.record(record).await
    }
}
