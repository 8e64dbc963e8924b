//! The mesh implementation of the `MediaArchitecture` seam: every member connects peer to peer to
//! every other; the server only relays offers, answers and ICE candidates and never touches
//! media. Filled by the Rooms issue.
