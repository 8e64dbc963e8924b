//! Live-streaming scenario rules: an anchor publishes, viewers watch subscribe-only, a viewer may
//! be invited on stage to co-host (连麦). Filled by the meeting-modes-and-live issue; the rules are
//! a state machine with no I/O, driven from the server wiring.
