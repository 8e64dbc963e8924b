//! The ids the seam speaks in: a room, a member (a signaling client id) and a stream the
//! server holds. Each is its own type so a member id cannot be passed where a stream id is
//! meant (the seam's calls take several of them side by side), and each is a shared string
//! (`Arc<str>`): a backend copies a member's id into every event it addresses to that member,
//! and a clone is a reference count, not an allocation.
//!
//! They read as the string they hold (`as_str`, `Deref`, `Display`, `Borrow<str>` so a map keyed by
//! them is looked up with a `&str`), compare with strings, and serialize as plain JSON
//! strings, so the wire does not change.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        /// Reads as a `&str` wherever one is taken (a lookup, a log field, a format): the
        /// type guards what is passed in, not what is read out.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.into())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id.into())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                $name(id.as_str().into())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &*self.0 == other.as_str()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($name::from)
            }
        }
    };
}

id_type!(
    /// A room, as the scenario layer names it (`roomId` on the wire).
    RoomId
);
id_type!(
    /// A member of a room's media: the signaling client id (`clientId` on the wire).
    MemberId
);
id_type!(
    /// A stream the server holds (sfu, mcu: `streamId` on the wire), unique in its room.
    StreamId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ids_read_compare_and_serialize_as_their_string() {
        let a = MemberId::from("alice");
        assert_eq!(a, "alice");
        assert_eq!(a.as_str(), "alice");
        assert_eq!(a.to_string(), "alice");
        assert_eq!(format!("{a:?}"), "\"alice\"");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"alice\"");
        let back: MemberId = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(back, a);
        // A map keyed by ids is looked up by the string.
        let mut m = BTreeMap::new();
        m.insert(a.clone(), 1);
        assert_eq!(m.get("alice"), Some(&1));
        // A clone shares the string.
        let b = a.clone();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
    }
}
