//! `wasi:clocks/monotonic-clock`'s `subscribe-duration` and
//! `subscribe-instant` with the call's deadline as a ceiling.
//!
//! Epoch interruption stops a guest only while it runs wasm: a guest asleep
//! in a host call (`std::thread::sleep`, `time.sleep`, `setTimeout` turned
//! into a blocking poll) sits in the host's `poll` until its timer fires,
//! an hour later if it asked for an hour, and its call ran on past its
//! deadline with no way to stop it. Here the timer a guest subscribes to
//! fires at the deadline at the latest; the guest wakes, and the epoch
//! deadline, which has passed by then, traps it as soon as it runs again
//! (the call ends with [`crate::CallError::Timeout`]). A shorter sleep is
//! untouched.
//!
//! Outbound HTTP keeps its own ceiling (see [`crate::outbound`]); these two
//! functions are the other way a guest can block for long.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};
use wasmtime_wasi::WasiView;

use crate::call::CallState;

/// The interface as `wasmtime-wasi` links it (its bundled WIT's version);
/// guests importing any 0.2.x resolve to it. Defining the functions again
/// under this name replaces that crate's versions; under another name they
/// would sit beside them unused, which the hostile-plugin test would catch.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A timer that fires at `until`.
struct Timer {
    until: tokio::time::Instant,
}

impl Pollable for Timer {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(tokio::time::sleep_until(self.until))
    }
}

/// Replaces the two subscribe functions in `linker`.
pub(crate) fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, CallState>, (nanos,): (u64,)| {
            Ok((timer(store.data_mut(), Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, CallState>, (when,): (u64,)| {
            let state = store.data_mut();
            // The guest's instant is on the clock WASI gives it.
            let now = state.clocks().now()?;
            let wait = Duration::from_nanos(when.saturating_sub(now));
            Ok((timer(state, wait)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable that is ready after `wait` or at the call's deadline,
/// whichever comes first.
fn timer(state: &mut CallState, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    let left = state
        .hooks
        .deadline
        .saturating_duration_since(Instant::now());
    let until = tokio::time::Instant::now() + wait.min(left);
    let table = state.ctx().table;
    let timer = table.push(Timer { until })?;
    subscribe(table, timer)
}
