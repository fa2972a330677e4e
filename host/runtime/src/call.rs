//! One plugin call: the store state it runs with and what it reports.
//!
//! Every call gets a fresh store whose WASI context is built from the
//! plugin's grants only: no inherited environment, arguments or stdio, no
//! host filesystem but the granted directories, no sockets, and outbound HTTP
//! only to allowlisted hosts. The call's log collects the plugin's
//! `host.log` lines and whatever it printed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::catalog::{CatalogAccess, LookupError, Refused};
use crate::outbound::OutboundHooks;
use crate::sidecar::Grants;

/// Most log lines one call may write; beyond it lines are counted, not kept,
/// so a chatty or hostile plugin cannot grow a run's log without bound.
pub const MAX_LOG_LINES: usize = 2_000;
/// Longest log line kept, in bytes; longer lines are cut.
pub const MAX_LOG_LINE_BYTES: usize = 8 * 1024;
/// Bytes of stdout and of stderr kept per call. Output past this is dropped
/// (the guest sees its writes succeed), bounding host memory per call.
pub const MAX_STDIO_BYTES: usize = 64 * 1024;
/// Most resources (streams, requests, ...) one call may hold at once, so a
/// plugin cannot exhaust host memory through the resource table.
pub const MAX_RESOURCES: usize = 10_000;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One line of a call's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// Milliseconds since the call started.
    pub at_ms: u64,
}

/// Receives each log line of a call as the plugin writes it (already
/// masked and cut), for a live view of a long call such as an action run.
/// Called on the calling thread, inside the plugin call: keep it cheap.
pub type LogSink = Arc<dyn Fn(&LogLine) + Send + Sync>;

/// What the caller of a long call can do while it runs: watch its log, and
/// stop it.
#[derive(Clone, Default)]
pub struct CallControl {
    /// Sees every log line as it is written.
    pub log_sink: Option<LogSink>,
    /// Set it to stop the call: the plugin is interrupted at its next
    /// instruction check (within a few milliseconds of running code) or
    /// within 50 ms of waiting in `wasi:io/poll` (asleep, or for an HTTP
    /// answer), and the call fails with [`CallError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

impl CallControl {
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for CallControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallControl")
            .field("log_sink", &self.log_sink.is_some())
            .field("cancel", &self.cancelled())
            .finish()
    }
}

/// Why a call failed. Each case fails only the call it happened in.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallError {
    /// The call ran past its wall-clock deadline and was interrupted.
    #[error("call exceeded its deadline of {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// The plugin tried to grow its memory past its cap.
    #[error("plugin tried to use more than its memory cap of {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: u64 },
    /// The plugin used up its fuel (instruction budget).
    #[error("plugin used up its fuel budget of {fuel}")]
    FuelExhausted { fuel: u64 },
    /// The plugin trapped (a panic, an `unreachable`, an out-of-bounds
    /// access, ...). `detail` carries what it printed to stderr, if anything.
    #[error("plugin trapped: {message}")]
    Trap { message: String },
    /// The plugin returned an error of its interface; `code` is the WIT case
    /// and `field` the JSON pointer of the parameter at fault, if any.
    #[error("plugin reported an error ({code}{}): {message}", field.as_deref().map(|f| format!(" at {f}")).unwrap_or_default())]
    Plugin {
        code: String,
        field: Option<String>,
        message: String,
    },
    /// The plugin returned something the contract does not allow (invalid
    /// JSON, the wrong number of results, ...).
    #[error("plugin returned invalid output: {message}")]
    BadOutput { message: String },
    /// Every instance slot is taken; the call may be retried.
    #[error("no instance slot free for the call, try again: {message}")]
    Busy { message: String },
    /// The plugin cannot be called (not loaded, failed to load, wrong role).
    #[error("{message}")]
    Unavailable { message: String },
    /// The caller stopped the call ([`CallControl::cancel`]).
    #[error("the call was cancelled")]
    Cancelled,
}

impl CallError {
    /// A short stable name of the case, for records and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::FuelExhausted { .. } => "fuel-exhausted",
            CallError::Trap { .. } => "trap",
            CallError::Plugin { .. } => "plugin-error",
            CallError::BadOutput { .. } => "bad-output",
            CallError::Busy { .. } => "busy",
            CallError::Unavailable { .. } => "unavailable",
            CallError::Cancelled => "cancelled",
        }
    }

    /// The error a plugin returned through its interface's `variant error`
    /// (or that the host gives in its place, such as `unknown-check`).
    pub(crate) fn plugin(code: &str, field: Option<String>, message: String) -> CallError {
        CallError::Plugin {
            code: code.to_owned(),
            field,
            message,
        }
    }
}

/// A call's result together with its log; the log is kept whether the call
/// succeeded or not.
#[derive(Debug)]
pub struct CallReport<T> {
    pub result: Result<T, CallError>,
    pub logs: Vec<LogLine>,
    pub elapsed: Duration,
}

impl<T> CallReport<T> {
    pub(crate) fn unavailable(message: String) -> CallReport<T> {
        CallReport::failed(CallError::Unavailable { message })
    }

    /// A call the host refused without running the plugin.
    pub(crate) fn failed(error: CallError) -> CallReport<T> {
        CallReport {
            result: Err(error),
            logs: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// A call the host answered without running the plugin.
    pub(crate) fn answered(value: T) -> CallReport<T> {
        CallReport {
            result: Ok(value),
            logs: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }
}

/// Caps a call's memory and, unlike wasmtime's `StoreLimits`, remembers
/// that it refused, so the error can say "memory cap" rather than a bare trap.
pub(crate) struct CallLimiter {
    memory_bytes: u64,
    pub refused_memory: bool,
}

/// The error a refused grow raises; it traps the guest at once rather than
/// letting `memory.grow` return -1, which many guest runtimes turn into an
/// abort without a message.
#[derive(Debug, thiserror::Error)]
#[error("memory cap reached")]
struct MemoryCapReached;

/// The error the epoch callback raises when the caller cancelled the call.
#[derive(Debug, thiserror::Error)]
#[error("call cancelled")]
pub(crate) struct CancelRequested;

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.refused_memory = true;
            return Err(MemoryCapReached.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's per-table slots.
        Ok(true)
    }
}

/// The `T` of `Store<T>` for one call.
pub struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) hooks: OutboundHooks,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    log: Vec<LogLine>,
    dropped_lines: usize,
    started: Instant,
    grants: Arc<Grants>,
    /// Values of the secrets this plugin was granted and the host knows.
    secrets: Arc<HashMap<String, String>>,
    /// Sees each log line as it is written.
    pub(crate) log_sink: Option<LogSink>,
    /// Answers the plugin's catalog lookups, if the host has a catalog.
    pub(crate) catalog: Option<CatalogAccess>,
    /// The caller's stop flag ([`CallControl::cancel`]), for the waits a
    /// guest makes in the host (see `waits.rs`).
    pub(crate) cancel: Option<Arc<AtomicBool>>,
}

impl CallState {
    /// Builds the sandbox for one call from the plugin's grants.
    pub(crate) fn new(
        grants: Arc<Grants>,
        secrets: Arc<HashMap<String, String>>,
        timeout: Duration,
    ) -> wasmtime::Result<CallState> {
        let stdout = MemoryOutputPipe::new(MAX_STDIO_BYTES);
        let stderr = MemoryOutputPipe::new(MAX_STDIO_BYTES);
        let mut b = WasiCtxBuilder::new();
        // Deny by default: WasiCtxBuilder starts with no env, args, preopens
        // or network; we add only stdio capture and the granted directories.
        b.stdout(stdout.clone()).stderr(stderr.clone());
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for d in &grants.dirs {
            let perms = if d.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            b.preopened_dir(&d.host, &d.guest, perms)?;
        }
        let started = Instant::now();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Ok(CallState {
            wasi: b.build(),
            http: WasiHttpCtx::new(),
            table,
            limiter: CallLimiter {
                memory_bytes: grants.limits.memory_bytes,
                refused_memory: false,
            },
            hooks: OutboundHooks {
                allow: grants.http_allow.clone(),
                deadline: started + timeout,
                denied: Vec::new(),
            },
            stdout,
            stderr,
            log: Vec::new(),
            dropped_lines: 0,
            started,
            grants,
            secrets,
            log_sink: None,
            catalog: None,
            cancel: None,
        })
    }

    fn push_log(&mut self, level: LogLevel, message: &str) {
        if self.log.len() >= MAX_LOG_LINES {
            self.dropped_lines += 1;
            return;
        }
        let mut message = self.mask(message);
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [line cut]");
        }
        let at_ms = self.started.elapsed().as_millis() as u64;
        let line = LogLine {
            level,
            message,
            at_ms,
        };
        if let Some(sink) = &self.log_sink {
            sink(&line);
        }
        self.log.push(line);
    }

    /// Replaces the values of the host's secrets in a log line.
    fn mask(&self, line: &str) -> String {
        mask_secrets(&self.secrets, line)
    }

    /// Ends the call: appends captured stdio and notes to the log and returns it.
    pub(crate) fn finish(&mut self) -> Vec<LogLine> {
        for (pipe, level) in [
            (self.stdout.clone(), LogLevel::Info),
            (self.stderr.clone(), LogLevel::Warn),
        ] {
            let bytes = pipe.contents();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.push_log(level, line);
            }
        }
        for denied in std::mem::take(&mut self.hooks.denied) {
            self.push_log(
                LogLevel::Warn,
                &format!("outbound HTTP to {denied} refused: not on this plugin's allowlist"),
            );
        }
        if self.dropped_lines > 0 {
            let n = self.dropped_lines;
            self.dropped_lines = 0;
            self.log.push(LogLine {
                level: LogLevel::Warn,
                message: format!("{n} more log lines dropped (limit {MAX_LOG_LINES} per call)"),
                at_ms: self.started.elapsed().as_millis() as u64,
            });
        }
        std::mem::take(&mut self.log)
    }

    /// The last thing the plugin printed to stderr, to explain a trap.
    pub(crate) fn last_stderr(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if tail.is_empty() {
            return None;
        }
        let from = tail.len().saturating_sub(3);
        Some(self.mask(&tail[from..].join(" | ")))
    }

    /// Classifies the error of a failed call.
    pub(crate) fn classify(&self, err: wasmtime::Error, fuel: Option<u64>) -> CallError {
        if err.downcast_ref::<CancelRequested>().is_some() {
            return CallError::Cancelled;
        }
        if self.limiter.refused_memory || err.downcast_ref::<MemoryCapReached>().is_some() {
            return CallError::MemoryLimit {
                limit_bytes: self.limiter.memory_bytes,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                return CallError::Timeout {
                    timeout_ms: self.grants.limits.timeout_ms,
                }
            }
            Some(Trap::OutOfFuel) => {
                return CallError::FuelExhausted {
                    fuel: fuel.unwrap_or(0),
                }
            }
            _ => {}
        }
        let text = format!("{err:#}");
        if text.contains("maximum concurrent") || text.contains("pooling allocator") {
            return CallError::Busy { message: text };
        }
        // The root cause is the useful part; the rest is wasmtime's backtrace.
        let root = err.root_cause().to_string();
        let message = match self.last_stderr() {
            Some(stderr) => format!("{root}; stderr: {stderr}"),
            None => root,
        };
        CallError::Trap { message }
    }
}

/// `text` with every secret value in `secrets` replaced by `[secret]`,
/// longest first (so a secret that contains another is masked whole).
/// Values shorter than 4 bytes are left alone: they would mask ordinary
/// words and say little about the secret.
pub(crate) fn mask_secrets(secrets: &HashMap<String, String>, text: &str) -> String {
    let mut values: Vec<&str> = secrets
        .values()
        .map(String::as_str)
        .filter(|v| v.len() >= 4 && text.contains(*v))
        .collect();
    if values.is_empty() {
        return text.to_owned();
    }
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_owned();
    for value in values {
        out = out.replace(value, "[secret]");
    }
    out
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The host interface, once for every contract version: the bindings of
/// each version have their own `Host` trait and types, and each trait method
/// forwards to the one implementation in [`CallState`] below.
macro_rules! impl_host {
    ($($version:ident)::+) => {
        impl $($version)::+::types::Host for CallState {}

        impl $($version)::+::host::Host for CallState {
            fn log(&mut self, level: $($version)::+::host::LogLevel, message: String) {
                use $($version)::+::host::LogLevel as L;
                let level = match level {
                    L::Trace => LogLevel::Trace,
                    L::Debug => LogLevel::Debug,
                    L::Info => LogLevel::Info,
                    L::Warn => LogLevel::Warn,
                    L::Error => LogLevel::Error,
                };
                self.push_log(level, &message);
            }

            fn settings(&mut self) -> String {
                self.settings_json()
            }

            fn setting(&mut self, key: String) -> Option<String> {
                self.setting_text(&key)
            }

            fn secret(&mut self, name: String) -> Result<String, $($version)::+::host::Error> {
                use $($version)::+::host::Error as E;
                self.secret_value(name).map_err(|e| match e {
                    SecretError::NotGranted(name) => E::NotGranted(name),
                    SecretError::NotSet(name) => E::NotSet(name),
                })
            }
        }
    };
}

impl_host!(crate::bindings::v0_4);
impl_host!(crate::bindings::v0_3);
impl_host!(crate::bindings::v0_2);
impl_host!(crate::bindings::v0_1);

/// The `catalog` import, once for every contract version that has it
/// (0.3.0 on); each forwards to the one lookup in `crate::catalog`.
macro_rules! impl_catalog {
    ($($version:ident)::+) => {
        impl $($version)::+::catalog::Host for CallState {
            fn lookup(
                &mut self,
                refs: Vec<String>,
            ) -> Result<
                Vec<Option<$($version)::+::types::Entity>>,
                $($version)::+::catalog::Error,
            > {
                use $($version)::+::catalog::Error as E;
                let deadline = self.hooks.deadline;
                match crate::catalog::lookup(self.catalog.as_ref(), &refs, deadline) {
                    Ok(found) => Ok(found.iter().map(|e| e.as_ref().map(Into::into)).collect()),
                    Err(refused) => {
                        let error = match refused {
                            Refused::TooMany(n) => {
                                E::TooManyReferences(n.min(u32::MAX as usize) as u32)
                            }
                            Refused::Lookup(LookupError::InvalidReference { index, message }) => {
                                E::InvalidReference((index as u32, message))
                            }
                            Refused::Lookup(LookupError::Unavailable(message)) => {
                                E::Unavailable(message)
                            }
                        };
                        self.push_log(
                            LogLevel::Debug,
                            &format!("catalog lookup refused: {error:?}"),
                        );
                        Err(error)
                    }
                }
            }
        }
    };
}

impl_catalog!(crate::bindings::v0_4);
impl_catalog!(crate::bindings::v0_3);

/// Why the host refused a secret; each contract version has its own copy of
/// this as `host.error`.
enum SecretError {
    NotGranted(String),
    NotSet(String),
}

impl CallState {
    /// `host.settings`: the sidecar's `[settings]` as a JSON object.
    fn settings_json(&self) -> String {
        crate::model::json_text(&self.grants.settings)
    }

    /// `host.setting`: a string setting as is, any other value as JSON.
    fn setting_text(&self, key: &str) -> Option<String> {
        match self.grants.settings.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(crate::model::json_text(other)),
        }
    }

    /// `host.secret`: only granted secrets, and only those the host knows.
    fn secret_value(&self, name: String) -> Result<String, SecretError> {
        if !self.grants.secrets.contains(&name) {
            return Err(SecretError::NotGranted(name));
        }
        match self.secrets.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(SecretError::NotSet(name)),
        }
    }
}
