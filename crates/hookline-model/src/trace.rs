//! W3C Trace Context (`traceparent`) as it travels with an event: taken
//! from the producer or started at ingest, carried in the event's AMQP
//! headers and in each delivery task, and sent on every webhook attempt, so
//! that one trace id follows an event from producer to receiver.

use std::fmt;

use rand::RngCore;

/// The AMQP header (and HTTP header) that carries the context.
pub const TRACEPARENT: &str = "traceparent";

/// One `traceparent`: the trace every hop shares, the span of the hop that
/// wrote it, and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// A new trace, sampled: for events that arrive without one.
    pub fn new_root() -> TraceParent {
        let mut trace_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut trace_id);
        // All-zero ids are invalid; a random 16 bytes being all zero is not
        // a case worth a loop, but cheap to rule out.
        trace_id[15] |= 1;
        TraceParent {
            trace_id,
            span_id: new_span_id(),
            flags: 1,
        }
    }

    /// The context a hop passes on: same trace and flags, its own span id.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Parses version `00` (and, as the spec asks, the first four fields of
    /// any later version); `None` for anything malformed or all-zero.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let text = text.trim();
        let mut parts = text.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = decode(trace)?;
        let span_id: [u8; 8] = decode(span)?;
        let [flags] = decode::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The incoming context's child when `incoming` is a valid
    /// `traceparent`, else a new trace.
    pub fn continue_or_start(incoming: Option<&str>) -> TraceParent {
        incoming
            .and_then(TraceParent::parse)
            .map_or_else(TraceParent::new_root, |parent| parent.child())
    }

    /// The trace id as 32 lowercase hex digits (for logs and history).
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// This hop's span id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// The raw ids and flags, for handing the context to a tracing library.
    pub fn parts(&self) -> ([u8; 16], [u8; 8], u8) {
        (self.trace_id, self.span_id, self.flags)
    }

    /// A context a tracing library made; `None` for the all-zero ids that
    /// mean "no span".
    pub fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<TraceParent> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

fn new_span_id() -> [u8; 8] {
    let mut span_id = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut span_id);
    span_id[7] |= 1;
    span_id
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !is_lower_hex(text) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let parsed = TraceParent::parse(GIVEN).expect("valid");
        assert_eq!(parsed.to_string(), GIVEN);
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_span() {
        let parent = TraceParent::parse(GIVEN).expect("valid");
        let child = TraceParent::continue_or_start(Some(GIVEN));
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert!(child.to_string().ends_with("-01"));
    }

    #[test]
    fn malformed_or_zero_contexts_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
            let fresh = TraceParent::continue_or_start(Some(bad));
            assert_ne!(fresh.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        let parsed = TraceParent::parse(later).expect("forward compatible");
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
