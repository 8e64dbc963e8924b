//! Meeting scenario rules: who owns a room, meeting mode (everyone talks), broadcast mode (one
//! presenter), intercom (one talker at a time, floor control), and who may publish. Filled by the
//! Rooms and meeting-modes issues; the rules are state machines with no I/O.
