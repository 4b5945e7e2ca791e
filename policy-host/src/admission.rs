//! The request and settings as `kwctl run` reads them, and the AdmissionResponse it prints.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a Kubewarden policy answers to `validate` (the SDK's `ValidationResponse`).
#[derive(Debug, Deserialize)]
pub struct ValidationResponse {
    pub accepted: bool,
    pub message: Option<String>,
    pub code: Option<u16>,
    pub audit_annotations: Option<HashMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

/// The AdmissionResponse policy-server returns and `kwctl run` prints.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionResponseStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct AdmissionResponseStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

impl AdmissionResponse {
    pub fn from_validation(uid: String, response: ValidationResponse) -> Self {
        let status = (!response.accepted).then_some(AdmissionResponseStatus {
            message: response.message,
            code: response.code,
        });
        Self {
            uid,
            allowed: response.accepted,
            status,
            audit_annotations: response.audit_annotations,
            warnings: response.warnings,
        }
    }

    /// What policy-server answers when the evaluation itself fails (a trap, the deadline).
    pub fn internal_error(uid: String, message: String) -> Self {
        Self {
            uid,
            allowed: false,
            status: Some(AdmissionResponseStatus {
                message: Some(message),
                code: Some(500),
            }),
            audit_annotations: None,
            warnings: None,
        }
    }
}

/// Reads a bare AdmissionRequest, or the `request` of an AdmissionReview; `-` is stdin.
pub fn read_request(path: &Path) -> Result<Value> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the request from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let document: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON AdmissionRequest", path.display()))?;
    let is_review = document.get("kind").and_then(Value::as_str) == Some("AdmissionReview");
    let request = if is_review {
        document.get("request").cloned()
    } else {
        Some(document)
    };
    match request {
        Some(request @ Value::Object(_)) => Ok(request),
        _ => bail!(
            "{}: the AdmissionReview has no request object",
            path.display()
        ),
    }
}

/// Settings from `--settings-json` or `--settings-path` (JSON); none means `{}`.
pub fn read_settings(json: Option<&str>, path: Option<&Path>) -> Result<Value> {
    let text = match (json, path) {
        (Some(json), _) => json.to_owned(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => return Ok(Value::Object(Default::default())),
    };
    serde_json::from_str(&text).context("the settings are not a JSON document")
}

/// The request's uid, echoed in the response.
pub fn request_uid(request: &Value) -> String {
    request
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejection_carries_status() {
        let response = ValidationResponse {
            accepted: false,
            message: Some("no".into()),
            code: Some(403),
            audit_annotations: None,
            warnings: Some(vec!["w".into()]),
        };
        let printed =
            serde_json::to_value(AdmissionResponse::from_validation("u".into(), response))
                .expect("serializable");
        assert_eq!(
            printed,
            json!({"uid": "u", "allowed": false, "status": {"message": "no", "code": 403}, "warnings": ["w"]})
        );
    }

    #[test]
    fn acceptance_has_no_status() {
        let response = ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            audit_annotations: None,
            warnings: None,
        };
        let printed =
            serde_json::to_value(AdmissionResponse::from_validation("u".into(), response))
                .expect("serializable");
        assert_eq!(printed, json!({"uid": "u", "allowed": true}));
    }
}
