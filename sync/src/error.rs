use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("--default-sidecars {list:?} is refused by the policy's settings validation: {reason}")]
    InvalidDefaultList { list: String, reason: String },

    #[error("--policy-name: a policy name is empty")]
    EmptyPolicyName,

    #[error(
        "--setting-name {0:?}: not a Kubernetes object name (lower-case letters, digits, '-' and \
         '.', at most 253 characters), so no Setting can have it"
    )]
    InvalidSettingName(String),

    #[error("cannot serve health and metrics on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },

    #[error(
        "{object}: {field} is {value}, not a list of feature gates; the Sidecar gate was not added"
    )]
    UnexpectedFeatureGates {
        object: String,
        field: String,
        value: String,
    },

    #[error("a task of the job failed: {0}")]
    Task(#[from] tokio::task::JoinError),

    #[error("the watch of {0} ended")]
    WatchEnded(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
