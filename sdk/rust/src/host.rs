//! What the host offers every plugin, whatever its role: a log, settings and
//! secrets. Everything here is scoped to the current call.

use std::fmt;

use serde_json::{Map, Value};

use crate::__private::bindings::portolan::plugin::host as wit;

/// How important a log line is.
pub use wit::LogLevel as Level;

/// Why [`secret`] returned no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// The operator did not grant this secret to this plugin (the sidecar's
    /// `secrets` does not name it). Holds the secret's name.
    NotGranted(String),
    /// The secret is granted but the host has no value for it. Holds the
    /// secret's name.
    NotSet(String),
    /// Anything else; the text is for humans.
    Other(String),
}

/// Appends a line to the log of the current call.
///
/// For an action or a scaffold run the line becomes part of the run's log,
/// shown live to the person who started it; for other roles it goes to the
/// host's log. The host caps the number and length of lines per call. Never
/// log secrets. The macros [`info!`](crate::info), [`warn!`](crate::warn) &
/// co. format and log in one step.
pub fn log(level: Level, message: &str) {
    wit::log(level, message);
}

/// The plugin's settings: the `[settings]` table of its sidecar file as a
/// JSON object (`{}` when there is none).
pub fn settings() -> Value {
    serde_json::from_str(&wit::settings()).unwrap_or_else(|_| Value::Object(Map::new()))
}

/// One setting by key. A string setting is returned as is, any other value as
/// its JSON text; `None` if the key is not set.
pub fn setting(key: &str) -> Option<String> {
    wit::setting(key)
}

/// The value of a secret the operator granted to this plugin by name (the
/// sidecar's `secrets = [...]`).
pub fn secret(name: &str) -> Result<String, SecretError> {
    wit::secret(name).map_err(|e| match e {
        wit::Error::NotGranted(name) => SecretError::NotGranted(name),
        wit::Error::NotSet(name) => SecretError::NotSet(name),
        wit::Error::Other(message) => SecretError::Other(message),
    })
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotGranted(name) => {
                write!(f, "secret `{name}` is not granted to this plugin (add it to `secrets` in the sidecar)")
            }
            SecretError::NotSet(name) => write!(
                f,
                "secret `{name}` is granted but the host has no value for it"
            ),
            SecretError::Other(message) => write!(f, "secret lookup failed: {message}"),
        }
    }
}

impl std::error::Error for SecretError {}

/// Shared body of the level macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($level:ident, $($arg:tt)+) => {
        $crate::log($crate::Level::$level, &::std::format!($($arg)+))
    };
}

/// Logs a line at `trace` level, `format!`-style.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::__log_at!(Trace, $($arg)+) };
}

/// Logs a line at `debug` level, `format!`-style.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__log_at!(Debug, $($arg)+) };
}

/// Logs a line at `info` level, `format!`-style: `portolan_sdk::info!("synced {n} entities")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__log_at!(Info, $($arg)+) };
}

/// Logs a line at `warn` level, `format!`-style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__log_at!(Warn, $($arg)+) };
}

/// Logs a line at `error` level, `format!`-style.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__log_at!(Error, $($arg)+) };
}
