//! Identifiers, one type each, so a conversation's id can never be passed where an agent's is
//! meant. They are parsed once at the edges (the wire, the store) and cheap to clone (`Arc<str>`):
//! the fan-out hands the same id to many sockets without copying it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The id as text (as stored and sent).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s))
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
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
    };
}

id_type!(
    /// A conversation (a UUID).
    ConversationId
);
id_type!(
    /// An agent account (a UUID).
    AgentId
);

impl ConversationId {
    /// A new random id.
    pub fn random() -> Self {
        uuid::Uuid::new_v4().to_string().into()
    }
}

impl AgentId {
    /// A new random id.
    pub fn random() -> Self {
        uuid::Uuid::new_v4().to_string().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire_and_look_up_by_str() {
        let id = ConversationId::from("c-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"c-1\"");
        let back: ConversationId = serde_json::from_str("\"c-1\"").unwrap();
        assert_eq!(back, id);
        let mut map = std::collections::HashMap::new();
        map.insert(id.clone(), 1);
        assert_eq!(map.get("c-1"), Some(&1));
        assert_ne!(ConversationId::random(), ConversationId::random());
    }
}
