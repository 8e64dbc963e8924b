//! Which rooms each client is a member of, and who is in each room: kept by the membership
//! events every room task emits, read so a disconnect goes to the client's rooms only and so
//! `signal.presence = rooms` knows who shares a room with whom.

use std::collections::{HashMap, HashSet};

/// Kept by the membership events every room task emits (a member joined or left; a room
/// that ends lets each member leave first, so it leaves no entries behind).
#[derive(Default)]
pub(crate) struct MemberIndex {
    pub(crate) rooms_of: HashMap<String, HashSet<String>>,
    pub(crate) members_of: HashMap<String, HashSet<String>>,
}

impl MemberIndex {
    pub(crate) fn joined(&mut self, room: &str, client: &str) {
        self.rooms_of
            .entry(client.to_owned())
            .or_default()
            .insert(room.to_owned());
        self.members_of
            .entry(room.to_owned())
            .or_default()
            .insert(client.to_owned());
    }

    pub(crate) fn left(&mut self, room: &str, client: &str) {
        fn drop_from(map: &mut HashMap<String, HashSet<String>>, key: &str, v: &str) {
            if let Some(set) = map.get_mut(key) {
                set.remove(v);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        drop_from(&mut self.rooms_of, client, room);
        drop_from(&mut self.members_of, room, client);
    }
}
