//! Hooks for an operator's view of the signaling layer (metrics): what was handled with which
//! result, what was refused. The hub calls them inline, so an implementation must be cheap and
//! must not block (atomic counters, not I/O).

use taoyao_boot::Code;

/// Told about every answered request and every refusal. Signal names passed here are only the
/// hub's own table (plus `client::register`); anything else is reported as `"unknown"`, so a
/// client cannot grow a label set by inventing names.
pub trait SignalObserver: Send + Sync + 'static {
    /// A request was answered with `code` (0000 for success).
    fn handled(&self, signal: &'static str, code: Code);
    /// A message was refused by the per-connection rate limit (answered 3403, not handled).
    fn rate_limited(&self);
    /// A WebSocket upgrade was refused because `signal.max_connections` was reached.
    fn connection_refused(&self);
}
