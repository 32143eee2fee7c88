//! The encoded variants of one stored object: at most one body per content coding (br, gzip, zstd), made once
//! by the encode step from the object's own body and kept with it. They live and die with the object: a purge,
//! an invalidation or a new fetch that replaces the object takes them with it; a 304 that refreshes the object
//! keeps them (the body is the same).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::compress::Coding;

/// Encoded bodies of one object, shared by every copy of it (cloning is cheap). Each slot is written once.
#[derive(Debug, Clone, Default)]
pub struct EncodedVariants(Arc<[OnceLock<Bytes>; 3]>);

impl EncodedVariants {
    /// The body in `coding`, if it was made already.
    pub fn get(&self, coding: Coding) -> Option<&Bytes> {
        self.0[coding.index()].get()
    }

    /// Keeps `body` as the object's `coding` variant; false if one was kept already (the first stays).
    pub fn set(&self, coding: Coding, body: Bytes) -> bool {
        self.0[coding.index()].set(body).is_ok()
    }

    /// Whether `other` is this very set (the same object's variants).
    pub fn same(&self, other: &EncodedVariants) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Bytes held by the variants, charged to the object's weight.
    pub fn bytes(&self) -> usize {
        self.0.iter().filter_map(|slot| slot.get()).map(Bytes::len).sum()
    }
}

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
}
