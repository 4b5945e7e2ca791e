//! The admission webhooks of the test's kube-apiserver, over HTTPS on loopback:
//!
//! - `/validate/<unique name>`: the policy module, run the way policy-server runs it (the in-repo
//!   waPC host: one compiled module, a fresh instance per request, its deadline), with the mode
//!   and settings the emulated controller last rolled out for that policy. In `monitor` mode the
//!   request is evaluated and allowed, as policy-server does.
//! - `/kubevirt/validate-vm`: KubeVirt's virt-api check of the `Sidecar` gate, as the VM admitter
//!   makes it (vms-admitter.go line 220 calls vmi-create-admitter.go's
//!   `ValidateVirtualMachineInstanceMetadata`, lines 1235-1240 at v1.7.0, on the template's
//!   metadata), and nothing else of virt-api.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, ensure};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use policy_host::host::{CodeCache, PolicyHost};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the emulated controller rolled out for one policy (policy-server's configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    pub mode: String,
    pub settings: Value,
}

/// One admission request the webhooks answered.
#[derive(Clone, Debug)]
pub struct Answer {
    pub webhook: String,
    pub operation: String,
    pub kind: String,
    pub name: String,
    pub allowed: bool,
    pub message: Option<String>,
}

pub struct State {
    /// By unique name (`clusterwide-hook-sidecars`).
    pub served: Mutex<HashMap<String, Served>>,
    /// Whether KubeVirt's `Sidecar` gate is on (the emulated virt-api reads its CR).
    pub sidecar_gate: AtomicBool,
    pub answers: Mutex<Vec<Answer>>,
    evaluator: Mutex<mpsc::Sender<Evaluation>>,
}

struct Evaluation {
    request: Value,
    settings: Value,
    reply: mpsc::Sender<Value>,
}

pub struct Webhook {
    pub port: u16,
    /// The CA that signed the server's certificate, PEM, for the webhook configurations.
    pub ca_bundle: String,
    pub state: Arc<State>,
}

impl Webhook {
    /// Serves on a free loopback port from `runtime`, with the module at `module`.
    pub fn start(runtime: &tokio::runtime::Runtime, module: &Path, dir: &Path) -> Result<Self> {
        let (certificate, key, ca) = certificates(dir)?;
        let evaluator = start_evaluator(module.to_owned())?;
        let state = Arc::new(State {
            served: Mutex::new(HashMap::new()),
            sidecar_gate: AtomicBool::new(false),
            answers: Mutex::new(Vec::new()),
            evaluator: Mutex::new(evaluator),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_file(&certificate)?],
                PrivateKeyDer::from_pem_file(&key)?,
            )?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        runtime.spawn(serve(listener, acceptor, Arc::clone(&state)));
        Ok(Self {
            port,
            ca_bundle: std::fs::read_to_string(ca)?,
            state,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn answers(&self) -> Vec<Answer> {
        self.state.answers.lock().expect("lock").clone()
    }
}

/// A CA and a serving certificate for 127.0.0.1, made with openssl.
fn certificates(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let ca_key = dir.join("webhook-ca.key");
    let ca = dir.join("webhook-ca.crt");
    let key = dir.join("webhook.key");
    let csr = dir.join("webhook.csr");
    let certificate = dir.join("webhook.crt");
    let extensions = dir.join("webhook.ext");
    std::fs::write(&extensions, "subjectAltName=IP:127.0.0.1\n")?;
    let openssl = |args: &[&str]| -> Result<()> {
        let output = Command::new("openssl").args(args).output()?;
        ensure!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let path = |p: &PathBuf| p.display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=runbook-test-ca",
        "-keyout",
        &path(&ca_key),
        "-out",
        &path(&ca),
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &path(&key),
        "-out",
        &path(&csr),
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path(&csr),
        "-CA",
        &path(&ca),
        "-CAkey",
        &path(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &path(&extensions),
        "-out",
        &path(&certificate),
    ])?;
    Ok((certificate, key, ca))
}

/// The module on a thread of its own, as policy-server's evaluation workers hold it.
fn start_evaluator(module: PathBuf) -> Result<mpsc::Sender<Evaluation>> {
    let (sender, receiver) = mpsc::channel::<Evaluation>();
    let (ready, loaded) = mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let host = match PolicyHost::load(&module, Duration::from_secs(2), CodeCache::Enabled) {
            Ok(host) => {
                let _ = ready.send(Ok(()));
                host
            }
            Err(error) => {
                let _ = ready.send(Err(format!("{error:#}")));
                return;
            }
        };
        for evaluation in receiver {
            let response = host.validate(&evaluation.request, &evaluation.settings);
            let _ = evaluation
                .reply
                .send(serde_json::to_value(response).unwrap_or(Value::Null));
        }
    });
    loaded
        .recv()
        .context("the evaluator thread")?
        .map_err(|error| anyhow!("loading the module: {error}"))?;
    Ok(sender)
}

impl State {
    /// The module's AdmissionResponse for `request` under `settings`.
    pub fn evaluate(&self, request: &Value, settings: &Value) -> Result<Value> {
        let (reply, answer) = mpsc::channel();
        self.evaluator
            .lock()
            .expect("lock")
            .send(Evaluation {
                request: request.clone(),
                settings: settings.clone(),
                reply,
            })
            .map_err(|_| anyhow!("the evaluator stopped"))?;
        answer
            .recv_timeout(Duration::from_secs(30))
            .context("the evaluator did not answer")
    }

    fn record(&self, webhook: &str, request: &Value, response: &Value) {
        self.answers.lock().expect("lock").push(Answer {
            webhook: webhook.to_owned(),
            operation: request["operation"].as_str().unwrap_or_default().to_owned(),
            kind: request["kind"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            name: request["name"].as_str().unwrap_or_default().to_owned(),
            allowed: response["allowed"] == true,
            message: response["status"]["message"].as_str().map(str::to_owned),
        });
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, state) = (acceptor.clone(), Arc::clone(&state));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(request, state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(request: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(400, json!({})),
    };
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let admission = review["request"].clone();
    let uid = admission["uid"].clone();
    let response = if path == "/kubevirt/validate-vm" {
        kubevirt_gate_check(&state, &admission)
    } else if let Some(name) = path.strip_prefix("/validate/") {
        let state = Arc::clone(&state);
        let name = name.to_owned();
        let admission = admission.clone();
        tokio::task::spawn_blocking(move || policy_server(&state, &name, &admission))
            .await
            .unwrap_or_else(|error| json!({ "allowed": false, "status": { "message": error.to_string(), "code": 500 } }))
    } else {
        return reply(404, json!({}));
    };
    let mut response = response;
    response["uid"] = uid;
    state.record(&path, &admission, &response);
    reply(
        200,
        json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response }),
    )
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// policy-server: the policy's verdict in protect mode; allowed (and evaluated) in monitor mode.
fn policy_server(state: &State, name: &str, admission: &Value) -> Value {
    let served = state.served.lock().expect("lock").get(name).cloned();
    let Some(served) = served else {
        return json!({ "allowed": false, "status": {
            "message": format!("policy {name} is not served by this policy-server"), "code": 404 } });
    };
    match state.evaluate(admission, &served.settings) {
        Ok(mut response) => {
            if served.mode == "monitor" {
                response = json!({ "allowed": true });
            }
            response
        }
        Err(error) => {
            json!({ "allowed": false, "status": { "message": format!("{error:#}"), "code": 500 } })
        }
    }
}

/// KubeVirt's VM admitter on the template's metadata: a non-empty sidecar annotation is refused
/// while the `Sidecar` gate is off.
fn kubevirt_gate_check(state: &State, admission: &Value) -> Value {
    const ANNOTATION: &str = "hooks.kubevirt.io/hookSidecars";
    let annotations = &admission["object"]["spec"]["template"]["metadata"]["annotations"];
    let sidecars = annotations[ANNOTATION].as_str().unwrap_or_default();
    if sidecars.is_empty() || state.sidecar_gate.load(Ordering::SeqCst) {
        return json!({ "allowed": true });
    }
    json!({ "allowed": false, "status": {
        "message": format!(
            "sidecar feature gate is not enabled in kubevirt-config, invalid entry spec.template.metadata.annotations.{ANNOTATION}"
        ),
        "code": 400,
    } })
}
