//! Host capability answers replayed from a session file in kwctl's format
//! (`kwctl run --record-host-capabilities-interactions` writes it,
//! `--replay-host-capabilities-interactions` reads it): a YAML list of exchanges, each the
//! request as kwctl's `CallbackRequestType` in YAML and the answer, consumed in order.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::kubernetes::GetResourceRequest;

/// One recorded exchange (kwctl writes `type: Exchange` beside these fields).
#[derive(Debug, Serialize, Deserialize)]
pub struct Exchange {
    pub request: String,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecordedResponse {
    Success { payload: String },
    Error { message: String },
}

/// The requests this host answers, spelled as policy-evaluator's `CallbackRequestType` (an
/// externally tagged enum, written by serde_yaml as `!KubernetesGetResource`).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackRequestType {
    KubernetesGetResource {
        api_version: String,
        kind: String,
        name: String,
        namespace: Option<String>,
        disable_cache: bool,
        #[serde(default)]
        field_masks: Option<BTreeSet<String>>,
    },
}

impl From<GetResourceRequest> for CallbackRequestType {
    fn from(request: GetResourceRequest) -> Self {
        Self::KubernetesGetResource {
            api_version: request.api_version,
            kind: request.kind,
            name: request.name,
            namespace: request.namespace,
            disable_cache: request.disable_cache,
            field_masks: request.field_masks,
        }
    }
}

pub struct Session {
    exchanges: Mutex<VecDeque<Exchange>>,
}

impl Session {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Cannot open host capabilities interactions file {path:?}"))?;
        let exchanges: VecDeque<Exchange> = serde_yaml::from_str(&text)
            .with_context(|| format!("cannot deserialize contents of {path:?}"))?;
        Ok(Self {
            exchanges: Mutex::new(exchanges),
        })
    }

    /// The next recorded answer, if the request is the one recorded next (kwctl's rule).
    pub fn answer(&self, request: CallbackRequestType) -> Result<Vec<u8>> {
        let exchange = self
            .exchanges
            .lock()
            .expect("session lock")
            .pop_front()
            .ok_or_else(|| anyhow!("the list of recorded responses is empty"))?;
        let expected: CallbackRequestType =
            serde_yaml::from_str(&exchange.request).with_context(|| {
                format!(
                    "Cannot deserialize recorded request {:?} into `CallbackRequestType`",
                    exchange.request
                )
            })?;
        if expected != request {
            return Err(anyhow!(
                "Replay error: unexpected request. Was expecting {expected:?}, got {request:?} instead"
            ));
        }
        match exchange.response {
            RecordedResponse::Success { payload } => Ok(payload.into_bytes()),
            RecordedResponse::Error { message } => Err(anyhow!("{message}")),
        }
    }

    /// Exchanges that were never replayed (kwctl warns about them at exit).
    pub fn leftovers(&self) -> usize {
        self.exchanges.lock().expect("session lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session as kwctl 1.35 records it.
    const SESSION: &str = r#"- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: harvesterhci.io/v1beta1
    kind: Setting
    name: whitelisted-sidecars
    namespace: null
    disable_cache: false
    field_masks: null
  response:
    type: Success
    payload: '{"apiVersion":"harvesterhci.io/v1beta1","kind":"Setting","metadata":{"name":"whitelisted-sidecars"},"value":"a/b:1"}'
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: harvesterhci.io/v1beta1
    kind: Setting
    name: whitelisted-sidecars
    namespace: null
    disable_cache: false
  response:
    type: Error
    message: Cannot find harvesterhci.io/v1beta1/Setting named 'whitelisted-sidecars' inside of namespace 'None'
"#;

    fn session() -> Session {
        Session {
            exchanges: Mutex::new(serde_yaml::from_str(SESSION).expect("kwctl's format")),
        }
    }

    fn setting_request(name: &str) -> CallbackRequestType {
        CallbackRequestType::KubernetesGetResource {
            api_version: "harvesterhci.io/v1beta1".into(),
            kind: "Setting".into(),
            name: name.into(),
            namespace: None,
            disable_cache: false,
            field_masks: None,
        }
    }

    #[test]
    fn replays_in_order_answers_and_errors() {
        let session = session();
        let payload = session
            .answer(setting_request("whitelisted-sidecars"))
            .expect("recorded success");
        assert!(
            String::from_utf8(payload)
                .expect("UTF-8")
                .contains("\"value\":\"a/b:1\"")
        );
        let error = session
            .answer(setting_request("whitelisted-sidecars"))
            .expect_err("recorded error");
        assert!(
            error
                .to_string()
                .starts_with("Cannot find harvesterhci.io/v1beta1/Setting")
        );
        let error = session
            .answer(setting_request("whitelisted-sidecars"))
            .expect_err("exhausted");
        assert_eq!(error.to_string(), "the list of recorded responses is empty");
    }

    #[test]
    fn an_unexpected_request_is_an_error() {
        let session = session();
        let error = session
            .answer(setting_request("other"))
            .expect_err("mismatch");
        assert!(
            error
                .to_string()
                .contains("Replay error: unexpected request")
        );
        assert_eq!(session.leftovers(), 1);
    }

    #[test]
    fn requests_are_written_as_kwctl_writes_them() {
        let written =
            serde_yaml::to_string(&setting_request("whitelisted-sidecars")).expect("YAML");
        assert!(
            written.starts_with("!KubernetesGetResource\napi_version: harvesterhci.io/v1beta1\n"),
            "{written}"
        );
    }
}
