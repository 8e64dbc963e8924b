//! Id generation. An instance per server (no globals), cheap to share behind an `Arc`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Largest integer a JavaScript client can hold exactly; message ids stay below it.
pub const MAX_SAFE_ID: u64 = (1 << 53) - 1;

#[derive(Debug)]
pub struct IdGenerator {
    next: AtomicU64,
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl IdGenerator {
    pub fn new() -> Self {
        IdGenerator {
            next: AtomicU64::new(1),
        }
    }

    /// A message id for a server-originated message (`header.id`), unique in this process.
    pub fn message_id(&self) -> u64 {
        // Wrapping at 2^53 would take centuries at any real message rate; stay in range anyway.
        self.next.fetch_add(1, Ordering::Relaxed) % MAX_SAFE_ID + 1
    }

    /// An opaque, unguessable id for rooms, sessions and the like (32 hex digits).
    pub fn unique(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_increase_and_unique_ids_differ() {
        let ids = IdGenerator::new();
        let a = ids.message_id();
        let b = ids.message_id();
        assert!(b > a);
        assert_ne!(ids.unique(), ids.unique());
        assert_eq!(ids.unique().len(), 32);
    }
}
