//! The encoded variants of one stored object: at most one body per content coding (br, gzip, zstd), made once
//! by the encode step from the object's own body and kept with it. They live and die with the object: a purge,
//! an invalidation or a new fetch that replaces the object takes them with it; a 304 that refreshes the object
//! keeps them (the body is the same).
//!
//! Almost no object is ever encoded, so an object pays for one small shared cell (a pointer, 32 B with its
//! allocation) and the three slots are allocated only when the first variant is kept.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use once_cell::race::OnceBox;

use crate::compress::Coding;

/// One slot per coding, each written once.
type Slots = [OnceLock<Bytes>; 3];

/// Encoded bodies of one object, shared by every copy of it (cloning is cheap). Each slot is written once.
#[derive(Debug, Clone, Default)]
pub struct EncodedVariants(Arc<OnceBox<Slots>>);

impl EncodedVariants {
    /// The body in `coding`, if it was made already.
    pub fn get(&self, coding: Coding) -> Option<&Bytes> {
        self.0.get()?[coding.index()].get()
    }

    /// Keeps `body` as the object's `coding` variant; false if one was kept already (the first stays).
    pub fn set(&self, coding: Coding, body: Bytes) -> bool {
        self.0.get_or_init(Box::default)[coding.index()].set(body).is_ok()
    }

    /// Whether `other` is this very set (the same object's variants).
    pub fn same(&self, other: &EncodedVariants) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Bytes held by the variants, charged to the object's weight.
    pub fn bytes(&self) -> usize {
        self.0.get().map_or(0, |slots| slots.iter().filter_map(|slot| slot.get()).map(Bytes::len).sum())
    }

    /// Bytes of memory the slots take once the first variant is kept (beyond the variants' own bodies).
    pub fn slots_bytes(&self) -> usize {
        if self.0.get().is_some() { SLOTS_BYTES } else { 0 }
    }
}

/// The three slots' allocation, as the allocator rounds it.
const SLOTS_BYTES: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_body_per_coding_first_wins() {
        let variants = EncodedVariants::default();
        let copy = variants.clone();
        assert!(variants.set(Coding::Br, Bytes::from_static(b"br1")));
        assert!(!copy.set(Coding::Br, Bytes::from_static(b"br2")));
        assert_eq!(copy.get(Coding::Br).map(|b| &b[..]), Some(&b"br1"[..]));
        assert_eq!(copy.get(Coding::Gzip), None);
        assert_eq!(variants.bytes(), 3);
        assert!(variants.same(&copy));
        assert!(!variants.same(&EncodedVariants::default()));
    }

    #[test]
    fn the_slots_are_allocated_with_the_first_variant_and_shared_by_earlier_copies() {
        let variants = EncodedVariants::default();
        let copy = variants.clone();
        assert_eq!((variants.get(Coding::Gzip), variants.bytes(), variants.slots_bytes()), (None, 0, 0));
        assert!(copy.set(Coding::Gzip, Bytes::from_static(b"gz")));
        assert_eq!(variants.get(Coding::Gzip).map(|b| &b[..]), Some(&b"gz"[..]), "a copy made before shares it");
        assert_eq!(variants.slots_bytes(), SLOTS_BYTES);
    }
}
