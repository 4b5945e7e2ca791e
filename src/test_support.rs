//! What the tests of the request path share: the fixtures of `test_data/`, and a request
//! evaluated through the whole `validate` payload.

use serde_json::{Value, json};

use crate::validation::validate_payload;
use crate::verdict::{Verdict, summary};

/// A bare AdmissionRequest of `test_data/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The verdict on `request` under `settings`, through the whole `validate` payload.
pub fn evaluate(request: &Value, settings: &Value) -> Verdict {
    let payload = json!({ "request": request, "settings": settings });
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
}

/// A rejection whose message holds every fragment.
pub fn assert_rejected(verdict: &Verdict, fragments: &[&str]) {
    assert!(
        !verdict.violations.is_empty(),
        "expected a rejection, got {verdict:?}"
    );
    let message = summary(&verdict.violations);
    for fragment in fragments {
        assert!(message.contains(fragment), "{fragment:?} not in: {message}");
    }
}
