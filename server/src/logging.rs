//! The JSON log line format of `[log] format = "json"`, installed by
//! [`crate::app::init_tracing`].
//!
//! A JSON line carries `timestamp`, `level`, `target`, the fields of every span it is inside
//! (outermost first, so an inner span's value wins), the name of the innermost `span`, then the
//! event's own fields (`message` among them). A line logged inside a call thus has `call_id`
//! and `tenant_id` at the top level:
//!
//! ```json
//! {"timestamp":"2026-01-05T05:51:25.001918Z","level":"INFO","message":"incoming call","call_id":"01a244c1-db48-7542-b082-8738154da4a1","caller":"+********3210","sip_call_id":"1-16021@127.0.0.1","span":"call","target":"vaani::call","tenant_id":"echo"}
//! ```

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one JSON object with the fields of its spans flattened in. Span
/// fields must be recorded with [`tracing_subscriber::fmt::format::JsonFields`] (each span's fields are kept as a JSON object).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        if SystemTime
            .format_time(&mut Writer::new(&mut timestamp))
            .is_ok()
        {
            line.insert("timestamp".into(), Value::String(timestamp));
        }
        let metadata = event.metadata();
        line.insert("level".into(), Value::from(metadata.level().as_str()));
        line.insert("target".into(), Value::from(metadata.target()));
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                // Empty when the span has no (recorded) fields yet.
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
            if let Some(name) = innermost {
                line.insert("span".into(), Value::from(name));
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        // `timestamp`, `level` and `message` lead, for a reader scanning the lines; the rest
        // follow in name order.
        let mut text = String::from("{");
        let leading = LEADING.iter().filter_map(|&k| line.get_key_value(k));
        let rest = line.iter().filter(|(k, _)| !LEADING.contains(&k.as_str()));
        for (i, (key, value)) in leading.chain(rest).enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(key).map_err(|_| fmt::Error)?);
            text.push(':');
            text.push_str(&serde_json::to_string(value).map_err(|_| fmt::Error)?);
        }
        text.push('}');
        writeln!(writer, "{text}")
    }
}

/// The keys written first on each JSON line, in this order.
const LEADING: [&str; 3] = ["timestamp", "level", "message"];

/// Collects an event's fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::format::JsonFields;

    use super::*;

    /// A writer that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl FnOnce()) -> Vec<Value> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn span_fields_are_flattened_into_each_line() {
        let lines = lines_of(|| {
            let outer = tracing::info_span!(
                "call",
                sip_call_id = "abc@host",
                tenant_id = tracing::field::Empty
            );
            let _outer = outer.enter();
            tracing::info!(status = 404, "refused before admission");
            outer.record("tenant_id", "clinic");
            let inner = tracing::info_span!("call", call_id = "c-1", tenant_id = "clinic");
            let _inner = inner.enter();
            tracing::info!(caller = "+********0001", ok = true, "incoming call");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "refused before admission");
        assert_eq!(first["status"], 404);
        assert_eq!(first["sip_call_id"], "abc@host");
        assert_eq!(first["span"], "call");
        assert!(first.get("tenant_id").is_none(), "not yet known: {first}");
        assert!(first.get("call_id").is_none(), "{first}");
        assert!(
            first["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );

        let second = &lines[1];
        assert_eq!(second["message"], "incoming call");
        assert_eq!(second["sip_call_id"], "abc@host");
        assert_eq!(second["call_id"], "c-1");
        assert_eq!(second["tenant_id"], "clinic");
        assert_eq!(second["caller"], "+********0001");
        assert_eq!(second["ok"], true);
        assert!(second.get("fields").is_none() && second.get("spans").is_none());
    }

    #[test]
    fn timestamp_level_and_message_lead_each_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("call", call_id = "c-1");
            let _span = span.enter();
            tracing::info!(answer = 42, "said \"hi\"");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("{\"timestamp\":\""), "{text}");
        assert!(
            text.contains("\",\"level\":\"INFO\",\"message\":\"said \\\"hi\\\"\",\"answer\":42,\"call_id\":\"c-1\","),
            "{text}"
        );
        assert!(text.ends_with("}\n"), "{text}");
    }

    #[test]
    fn lines_outside_spans_have_no_span_fields() {
        let lines = lines_of(|| tracing::warn!(error = "boom", "store unreachable"));
        assert_eq!(lines.len(), 1);
        let line = lines[0].as_object().unwrap();
        let mut keys: Vec<&str> = line.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["error", "level", "message", "target", "timestamp"],
            "{line:?}"
        );
        assert_eq!(line["level"], "WARN");
    }
}
