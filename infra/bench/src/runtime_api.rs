//! A minimal Lambda Runtime API on loopback: execs a function binary as Lambda does (a
//! clean environment plus `AWS_LAMBDA_RUNTIME_API`), hands it one event through
//! `/runtime/invocation/next`, and captures what it answers — a response, an invocation
//! error, an init error, or an exit before answering — with its stdout and stderr.
//!
//! Used by `coldstart` (timing) and by the tests that run each function's binary in its
//! deployed shape (`tests/function_binaries.rs`).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

/// The request id handed to the function with its one event.
pub const REQUEST_ID: &str = "local-request-1";

/// One invocation of one fresh process.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub binary: PathBuf,
    /// The event, as the Runtime API hands it over (JSON).
    pub event: String,
    /// The process's whole environment: nothing is inherited from this process, and
    /// `AWS_LAMBDA_RUNTIME_API` is added here. See [`lambda_environment`].
    pub env: Vec<(String, String)>,
    /// How long the function has (its `Timeout`): the deadline handed to it, and how long
    /// this waits for the answer.
    pub timeout: Duration,
    /// The function's ARN, as the Runtime API names it.
    pub function_arn: String,
}

/// What the function did with its one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST /runtime/invocation/<id>/response`, with its body.
    Response(String),
    /// `POST /runtime/invocation/<id>/error`, with its body.
    Error(String),
    /// `POST /runtime/init/error`, with its body.
    InitError(String),
    /// The process ended before answering, with its exit code (`None`: a signal).
    Exited(Option<i32>),
    /// No answer within the timeout.
    TimedOut,
}

/// The outcome of an [`Invocation`].
#[derive(Debug, Clone)]
pub struct Invoked {
    pub answer: Answer,
    /// From exec to the answer (or to the exit).
    pub elapsed: Duration,
    /// From exec to the first `GET /next`: the process's init (none if it never asked).
    pub init: Option<Duration>,
    pub stdout: String,
    pub stderr: String,
}

impl Invoked {
    /// The response body, if the function answered with one.
    pub fn response(&self) -> Option<&str> {
        match &self.answer {
            Answer::Response(body) => Some(body),
            _ => None,
        }
    }

    /// Everything the process printed, for a failure message.
    pub fn output(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// The variables Lambda sets for a function on `provided.al2023`, except
/// `AWS_LAMBDA_RUNTIME_API` (added by [`invoke_once`]) and the credentials (the caller's).
/// `LD_LIBRARY_PATH` is left out: Lambda's value names its own directories, and on this
/// machine it would only redirect the dynamic linker.
pub fn lambda_environment(function_name: &str, memory_mb: u64, region: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]00000000000000000000000000000000".to_owned(),
        ),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The server's view of a process's invocations.
struct State {
    deadline_ms: u128,
    function_arn: String,
    /// The events not yet handed out; each `/next` waits for one.
    events: Mutex<std::collections::VecDeque<String>>,
    released: tokio::sync::Semaphore,
    /// When the process first asked for an event: the end of its init.
    first_poll: Mutex<Option<Instant>>,
    answers: Mutex<Vec<(Instant, Answer)>>,
    answered: Notify,
}

impl State {
    fn answer(&self, answer: Answer) {
        lock(&self.answers).push((Instant::now(), answer));
        self.answered.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(state: Arc<State>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        lock(&state.first_poll).get_or_insert_with(Instant::now);
        // Parks until an event is released (a process that answered its last waits here
        // until it is killed, as a Lambda sandbox freezes).
        let Ok(permit) = state.released.acquire().await else {
            return http::Response::default();
        };
        permit.forget();
        let event = lock(&state.events).pop_front().unwrap_or_default();
        return http::Response::builder()
            .header("lambda-runtime-aws-request-id", REQUEST_ID)
            .header("lambda-runtime-deadline-ms", state.deadline_ms.to_string())
            .header("lambda-runtime-invoked-function-arn", state.function_arn.as_str())
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(Bytes::from(event)))
            .unwrap_or_default();
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let answer = if path.ends_with("/init/error") {
        Answer::InitError(body)
    } else if path.ends_with("/response") {
        Answer::Response(body)
    } else {
        Answer::Error(body)
    };
    state.answer(answer);
    http::Response::builder()
        .status(202)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// Reads a pipe to its end (the process's exit closes it).
fn drain<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text).await;
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// A function process behind a Runtime API of its own, handed events one by one: the
/// first is [`Invocation::event`], later ones are released with [`Sandbox::release`] (a
/// warm container's next invocations).
pub struct Sandbox {
    state: Arc<State>,
    child: tokio::process::Child,
    server: tokio::task::JoinHandle<()>,
    started: Instant,
    timeout: Duration,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
    exited: Option<Option<i32>>,
}

/// How the wait for an answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Answered,
    Exited(Option<i32>),
    TimedOut,
}

impl Sandbox {
    /// Execs the binary (its clock starts now) with the first event released.
    pub async fn start(invocation: &Invocation) -> Result<Sandbox, String> {
        let deadline_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|now| (now + invocation.timeout).as_millis())
            .unwrap_or(0);
        let state = Arc::new(State {
            deadline_ms,
            function_arn: invocation.function_arn.clone(),
            events: Mutex::new([invocation.event.clone()].into()),
            released: tokio::sync::Semaphore::new(1),
            first_poll: Mutex::new(None),
            answers: Mutex::new(Vec::new()),
            answered: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let server_state = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&server_state);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(serve(state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });

        let started = Instant::now();
        let mut child = tokio::process::Command::new(&invocation.binary)
            .env_clear()
            .envs(invocation.env.iter().map(|(name, value)| (name, value)))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", invocation.binary.display()))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Ok(Sandbox {
            state,
            child,
            server,
            started,
            timeout: invocation.timeout,
            stdout,
            stderr,
            exited: None,
        })
    }

    /// The process id (for its CPU time, [`cpu_time`]).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Hands out `events` after those released before.
    pub fn release(&self, events: impl IntoIterator<Item = String>) {
        let mut queue = lock(&self.state.events);
        let before = queue.len();
        queue.extend(events);
        self.state.released.add_permits(queue.len() - before);
    }

    /// Waits until `count` answers in all have come (or the process exits, or the
    /// timeout passes, counted from now).
    pub async fn wait_for(&mut self, count: usize) -> Waited {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let notified = self.state.answered.notified();
            if lock(&self.state.answers).len() >= count {
                return Waited::Answered;
            }
            if let Some(code) = self.exited {
                return Waited::Exited(code);
            }
            tokio::select! {
                () = notified => {}
                status = self.child.wait() => {
                    self.exited = Some(status.ok().and_then(|s| s.code()));
                }
                () = tokio::time::sleep_until(deadline) => return Waited::TimedOut,
            }
        }
    }

    /// From exec to the first `GET /next` (init done), if it came.
    pub fn init(&self) -> Option<Duration> {
        lock(&self.state.first_poll).map(|at| at - self.started)
    }

    /// The `n`th answer (from 0), with when it came, from exec.
    pub fn answer(&self, n: usize) -> Option<(Duration, Answer)> {
        lock(&self.state.answers)
            .get(n)
            .map(|(at, answer)| (*at - self.started, answer.clone()))
    }

    /// Kills the process; what it printed.
    pub async fn finish(mut self) -> (String, String) {
        let _ = self.child.kill().await;
        self.server.abort();
        (
            self.stdout.await.unwrap_or_default(),
            self.stderr.await.unwrap_or_default(),
        )
    }
}

/// The CPU time (user + system, every live thread) process `pid` has used, from the
/// scheduler's nanosecond counts (`/proc/<pid>/task/*/schedstat`), not the 10 ms ticks of
/// `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| format!("process {pid}: {e}"))?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it is then not counted.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(Duration::from_nanos(total))
}

/// Execs the binary behind a Runtime API of its own, hands it the event, and returns what
/// it answered; the process is killed once it has. `Err` only when it cannot be started.
pub async fn invoke_once(invocation: &Invocation) -> Result<Invoked, String> {
    let mut sandbox = Sandbox::start(invocation).await?;
    let waited = sandbox.wait_for(1).await;
    let init = sandbox.init();
    let (answer, elapsed) = match (sandbox.answer(0), waited) {
        (Some((at, answer)), _) => (answer, at),
        (None, Waited::Exited(code)) => (Answer::Exited(code), sandbox.started.elapsed()),
        (None, _) => (Answer::TimedOut, sandbox.started.elapsed()),
    };
    let (stdout, stderr) = sandbox.finish().await;
    Ok(Invoked {
        answer,
        elapsed,
        init,
        stdout,
        stderr,
    })
}

/// `target/<profile>/<name>` beside the running executable (a test's or a tool's, both in
/// `target/<profile>/` or its `deps/`), with a message that says how to build it.
pub fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dir: &Path = exe.parent().ok_or("the executable has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().ok_or("deps has no parent")?;
    }
    let binary = dir.join(name);
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: build the function binaries first with `cargo build --workspace --bins` \
             (infra/scripts/test.sh does)",
            binary.display()
        ))
    }
}
