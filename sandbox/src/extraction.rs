//! Extraction schemas: compiled once per plugin at load, used to validate every
//! `extraction.submit`.

use std::collections::HashMap;

use crate::config::MAX_EXTRACTION_BYTES;
use crate::error::LoadError;

/// Most violations reported back to the guest for one submission.
pub const MAX_VIOLATIONS: usize = 32;

/// Deepest nesting accepted in extraction data and in schemas. Validation
/// recurses with the data; this bounds the host stack it uses (it runs on the
/// guest's fiber stack).
pub const MAX_JSON_DEPTH: usize = 32;

/// Longest violation message (longer ones are truncated).
const MAX_VIOLATION_MESSAGE_BYTES: usize = 256;

/// An extraction schema a plugin declared in `describe()`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SchemaInfo {
    /// Id the plugin submits against.
    pub id: String,
    /// What the record means.
    pub description: String,
    /// The JSON Schema document.
    pub json_schema: serde_json::Value,
}

/// One reason an extraction failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value ("" is the whole document).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why an extraction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractionRejection {
    /// The schema id was not declared in `describe()`.
    #[error("unknown schema")]
    UnknownSchema,
    /// The data is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The data does not match the schema.
    #[error("{} schema violation(s)", .0.len())]
    SchemaViolation(Vec<Violation>),
    /// The data is larger than [`MAX_EXTRACTION_BYTES`].
    #[error("too large")]
    TooLarge,
}

/// The compiled extraction schemas of one plugin.
pub struct ExtractionSchemas {
    validators: HashMap<String, jsonschema::Validator>,
}

impl std::fmt::Debug for ExtractionSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtractionSchemas")
            .field("ids", &self.validators.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ExtractionSchemas {
    /// Compiles every schema. Fails on the first one that is not a valid JSON
    /// Schema (remote `$ref`s are not resolved, so they fail too).
    pub fn compile(schemas: &[SchemaInfo]) -> Result<Self, LoadError> {
        let mut validators = HashMap::with_capacity(schemas.len());
        for schema in schemas {
            if json_depth(&schema.json_schema) > MAX_JSON_DEPTH {
                return Err(LoadError::InvalidSchema {
                    id: schema.id.clone(),
                    message: format!("nested deeper than {MAX_JSON_DEPTH} levels"),
                });
            }
            let validator = jsonschema::validator_for(&schema.json_schema).map_err(|e| {
                LoadError::InvalidSchema {
                    id: schema.id.clone(),
                    message: truncate(e.to_string(), MAX_VIOLATION_MESSAGE_BYTES),
                }
            })?;
            validators.insert(schema.id.clone(), validator);
        }
        Ok(ExtractionSchemas { validators })
    }

    /// No schemas at all.
    pub fn empty() -> Self {
        ExtractionSchemas {
            validators: HashMap::new(),
        }
    }

    /// Whether `schema_id` was declared.
    pub fn contains(&self, schema_id: &str) -> bool {
        self.validators.contains_key(schema_id)
    }

    /// Checks one submission and returns the parsed data if it is acceptable.
    pub fn validate(
        &self,
        schema_id: &str,
        data_json: &str,
    ) -> Result<serde_json::Value, ExtractionRejection> {
        let validator = self
            .validators
            .get(schema_id)
            .ok_or(ExtractionRejection::UnknownSchema)?;
        if data_json.len() > MAX_EXTRACTION_BYTES {
            return Err(ExtractionRejection::TooLarge);
        }
        let data: serde_json::Value = serde_json::from_str(data_json)
            .map_err(|e| ExtractionRejection::InvalidJson(e.to_string()))?;
        if json_depth(&data) > MAX_JSON_DEPTH {
            return Err(ExtractionRejection::InvalidJson(format!(
                "nested deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        let violations: Vec<Violation> = validator
            .iter_errors(&data)
            .take(MAX_VIOLATIONS)
            .map(|e| Violation {
                path: e.instance_path().as_str().to_string(),
                message: truncate(e.to_string(), MAX_VIOLATION_MESSAGE_BYTES),
            })
            .collect();
        if violations.is_empty() {
            Ok(data)
        } else {
            Err(ExtractionRejection::SchemaViolation(violations))
        }
    }
}

/// Nesting depth of a JSON value (a scalar is 1), computed without recursion.
fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            serde_json::Value::Array(items) => {
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            serde_json::Value::Object(fields) => {
                stack.extend(fields.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Truncates to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person() -> ExtractionSchemas {
        ExtractionSchemas::compile(&[SchemaInfo {
            id: "person".into(),
            description: "A person".into(),
            json_schema: json!({
                "type": "object",
                "required": ["name", "age"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "age": {"type": "integer", "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}}
                }
            }),
        }])
        .unwrap()
    }

    #[test]
    fn valid_data_is_returned_parsed() {
        let data = person()
            .validate("person", r#"{"name":"Asha","age":31}"#)
            .unwrap();
        assert_eq!(data, json!({"name": "Asha", "age": 31}));
    }

    #[test]
    fn violations_carry_json_pointer_paths() {
        let err = person()
            .validate("person", r#"{"name":"","age":-1,"tags":["ok",7]}"#)
            .unwrap_err();
        let ExtractionRejection::SchemaViolation(violations) = err else {
            panic!("expected violations, got {err:?}");
        };
        let mut paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, vec!["/age", "/name", "/tags/1"]);
        assert!(violations.iter().all(|v| !v.message.is_empty()));
    }

    #[test]
    fn missing_required_property_is_reported_at_the_root() {
        let err = person()
            .validate("person", r#"{"name":"Asha"}"#)
            .unwrap_err();
        let ExtractionRejection::SchemaViolation(violations) = err else {
            panic!("expected violations, got {err:?}");
        };
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].path, "");
        assert!(violations[0].message.contains("age"), "{violations:?}");
    }

    #[test]
    fn unknown_schema_bad_json_and_oversize_are_refused() {
        let schemas = person();
        assert_eq!(
            schemas.validate("nope", "{}"),
            Err(ExtractionRejection::UnknownSchema)
        );
        assert!(matches!(
            schemas.validate("person", "{not json"),
            Err(ExtractionRejection::InvalidJson(_))
        ));
        let huge = format!(
            r#"{{"name":"{}","age":1}}"#,
            "x".repeat(MAX_EXTRACTION_BYTES)
        );
        assert_eq!(
            schemas.validate("person", &huge),
            Err(ExtractionRejection::TooLarge)
        );
    }

    #[test]
    fn invalid_schema_is_a_load_error() {
        let err = ExtractionSchemas::compile(&[SchemaInfo {
            id: "broken".into(),
            description: String::new(),
            json_schema: json!({"type": 12}),
        }])
        .unwrap_err();
        assert!(
            matches!(&err, LoadError::InvalidSchema { id, .. } if id == "broken"),
            "{err:?}"
        );
    }

    #[test]
    fn remote_refs_are_not_fetched() {
        let err = ExtractionSchemas::compile(&[SchemaInfo {
            id: "remote".into(),
            description: String::new(),
            json_schema: json!({"$ref": "https://example.com/schema.json"}),
        }]);
        assert!(err.is_err());
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn deep_nesting_is_refused_and_allowed_depth_validates_on_a_small_stack() {
        let schemas = ExtractionSchemas::compile(&[SchemaInfo {
            id: "tree".into(),
            description: String::new(),
            json_schema: json!({"type": "array", "items": {"$ref": "#"}}),
        }])
        .unwrap();
        assert_eq!(json_depth(&json!([[[]]])), 3);
        assert!(matches!(
            schemas.validate("tree", &nested(MAX_JSON_DEPTH + 1)),
            Err(ExtractionRejection::InvalidJson(_))
        ));
        // The deepest accepted data validates within a quarter of the fiber stack
        // the guest's host calls run on, even in a debug build.
        let accepted = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || schemas.validate("tree", &nested(MAX_JSON_DEPTH)).is_ok())
            .unwrap()
            .join()
            .unwrap();
        assert!(accepted);
    }

    #[test]
    fn deeply_nested_schemas_are_refused() {
        let mut schema = json!({"type": "string"});
        for _ in 0..MAX_JSON_DEPTH {
            schema = json!({ "items": schema });
        }
        let err = ExtractionSchemas::compile(&[SchemaInfo {
            id: "deep".into(),
            description: String::new(),
            json_schema: schema,
        }])
        .unwrap_err();
        assert!(matches!(err, LoadError::InvalidSchema { .. }), "{err:?}");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo".to_string(), 2), "h");
        assert_eq!(truncate("abc".to_string(), 10), "abc");
    }
}
