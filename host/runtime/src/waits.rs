//! `wasi:io/poll`'s blocking functions (`poll`, `pollable.block`) bounded
//! by the call's deadline and its caller's cancel flag.
//!
//! Epoch interruption stops a guest only while it runs wasm. A guest that
//! waits in the host (`std::thread::sleep`, Python's `time.sleep`, any
//! poll on a timer or stream) sat in wasmtime-wasi's `poll` until what it
//! waited for was ready: an hour if it slept for an hour, with its call far
//! past its deadline and deaf to a cancel. Linked again here, a wait that
//! reaches the deadline fails the call as a timeout, and one whose caller
//! sets the cancel flag fails it as cancelled within [`CANCEL_POLL`],
//! exactly as the epoch callback does for a guest that runs. A wait that
//! ends in time answers as before.
//!
//! (Outbound HTTP also bounds its own waits; see [`crate::outbound`].)

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{StoreContextMut, Trap};
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::WasiView;

use crate::call::{CallState, CancelRequested};

/// The interface as `wasmtime-wasi` links it (its bundled WIT's version);
/// guests importing any 0.2.x resolve to it. Defined again under this name,
/// the functions replace that crate's; under another they would sit beside
/// them unused, which the hostile-plugin test (a sleeping plugin) catches.
const POLL: &str = "wasi:io/poll@0.2.12";

/// How often a wait of a call that can be cancelled looks at the flag.
pub(crate) const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Replaces `poll` and `[method]pollable.block` in `linker`.
pub(crate) fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, CallState>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let (limit, table) = limit(store.data_mut());
            Ok((in_tokio(limit.bound(table.poll(pollables)))?,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, CallState>, (pollable,): (Resource<DynPollable>,)| {
            let (limit, table) = limit(store.data_mut());
            in_tokio(limit.bound(table.block(pollable)))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What ends a wait early: the call's deadline, and its cancel flag.
struct Limit {
    deadline: tokio::time::Instant,
    cancel: Option<Arc<AtomicBool>>,
}

fn limit(state: &mut CallState) -> (Limit, &mut ResourceTable) {
    let left = state
        .hooks
        .deadline
        .saturating_duration_since(Instant::now());
    let limit = Limit {
        deadline: tokio::time::Instant::now() + left,
        cancel: state.cancel.clone(),
    };
    (limit, state.ctx().table)
}

impl Limit {
    /// `wait`'s answer, or the error that stops the call if the deadline
    /// or a cancel comes first.
    async fn bound<T>(
        self,
        wait: impl Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        tokio::select! {
            biased;
            answer = wait => answer,
            stop = self.reached() => Err(stop),
        }
    }

    /// Resolves when the deadline passes (the error the epoch deadline
    /// raises, a timeout) or the flag is set (a cancel).
    async fn reached(&self) -> wasmtime::Error {
        loop {
            if self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return CancelRequested.into();
            }
            let now = tokio::time::Instant::now();
            if now >= self.deadline {
                return Trap::Interrupt.into();
            }
            let next = match self.cancel {
                Some(_) => self.deadline.min(now + CANCEL_POLL),
                None => self.deadline,
            };
            tokio::time::sleep_until(next).await;
        }
    }
}
