//! The encoded variants of one stored object: at most one body per content coding (br, gzip, zstd), made once
//! by the encode step from the object's own body and kept with it. They live and die with the object: a purge,
//! an invalidation or a new fetch that replaces the object takes them with it; a 304 that refreshes the object
//! keeps them (the body is the same).
//!
//! Almost no object is ever encoded, so the object's cell is one pointer and allocates the slots only when the
//! first variant is kept. A response served from the object carries an [`EncodedVariants`] handle: the slots as
//! they were, and the body they belong to, which says later whether the object stored by then (the same one, or a
//! copy a 304 refreshed, which shares the body) is the one to keep a new variant with.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use once_cell::race::OnceBox;

use super::object::CachedObject;
use crate::compress::{Coding, HeadVerdict};

/// One slot per coding, each written once.
type Slots = [OnceLock<Bytes>; 3];

/// The encoded bodies kept with one stored object. A copy made after the first variant shares the slots.
#[derive(Debug, Default)]
pub struct VariantCell(OnceBox<Arc<Slots>>);

impl Clone for VariantCell {
    fn clone(&self) -> VariantCell {
        let cell = VariantCell::default();
        if let Some(slots) = self.0.get() {
            // A fresh cell: this set cannot fail.
            let _ = cell.0.set(Box::new(slots.clone()));
        }
        cell
    }
}

impl VariantCell {
    /// The body in `coding`, if it was made already.
    pub fn get(&self, coding: Coding) -> Option<&Bytes> {
        self.0.get()?[coding.index()].get()
    }

    /// Keeps `body` as the object's `coding` variant; false if one was kept already (the first stays).
    pub fn set(&self, coding: Coding, body: Bytes) -> bool {
        self.0.get_or_init(|| Box::new(Arc::default()))[coding.index()].set(body).is_ok()
    }

    /// Bytes held by the variants, charged to the object's weight.
    pub fn bytes(&self) -> usize {
        self.0.get().map_or(0, |slots| slots.iter().filter_map(|slot| slot.get()).map(Bytes::len).sum())
    }

    /// Bytes of memory the slots take once the first variant is kept (beyond the variants' own bodies).
    pub fn slots_bytes(&self) -> usize {
        if self.0.get().is_some() { SLOTS_BYTES } else { 0 }
    }

    /// What a response served from an object with this cell and `body` carries for the encode step.
    pub fn handle(&self, body: &Bytes) -> EncodedVariants {
        EncodedVariants { slots: self.0.get().cloned(), body: body.clone(), verdict: 0 }
    }
}

/// The three slots' allocations (the shared slots and the cell's box), as the allocator rounds them.
const SLOTS_BYTES: usize = 144 + 32;

/// The variants of the object a response was served from, as they were then, and the body they belong to.
#[derive(Debug, Clone)]
pub struct EncodedVariants {
    slots: Option<Arc<Slots>>,
    body: Bytes,
    /// The encode step's verdict on the object's head, as kept with it (`RenderedHead::verdict`); 0: none yet.
    verdict: u8,
}

impl EncodedVariants {
    /// The same handle, carrying the verdict kept with the object's head (`RenderedHead::verdict`).
    pub fn with_verdict(mut self, verdict: u8) -> EncodedVariants {
        self.verdict = verdict;
        self
    }

    /// The encode step's verdict on the head of the object the response was served from, if it was worked out.
    pub fn verdict(&self) -> Option<HeadVerdict> {
        HeadVerdict::from_byte(self.verdict)
    }

    /// The body in `coding`, if it was made when the response was served.
    pub fn get(&self, coding: Coding) -> Option<&Bytes> {
        self.slots.as_ref()?[coding.index()].get()
    }

    /// Whether `object` holds the body these variants are made from: the object the response came from, or a
    /// copy of it (a 304 refreshed it, a purge marked it stale), never an object fetched anew. The handle keeps
    /// the body alive, so no other body can take its place in memory meanwhile.
    pub fn is_of(&self, object: &CachedObject) -> bool {
        !self.body.is_empty() && self.body.as_ptr() == object.body.as_ptr() && self.body.len() == object.body.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Freshness;
    use http::{HeaderMap, StatusCode};
    use std::time::{Duration, SystemTime};

    fn object(body: &'static str) -> CachedObject {
        let freshness = Freshness {
            received: SystemTime::now(),
            initial_age: Duration::ZERO,
            fresh_for: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: false,
            immutable: false,
        };
        CachedObject::new(StatusCode::OK, &HeaderMap::new(), Bytes::from(body.as_bytes().to_vec()), freshness)
    }

    #[test]
    fn one_body_per_coding_first_wins() {
        let cell = VariantCell::default();
        assert!(cell.set(Coding::Br, Bytes::from_static(b"br1")));
        let copy = cell.clone();
        assert!(!copy.set(Coding::Br, Bytes::from_static(b"br2")));
        assert_eq!(copy.get(Coding::Br).map(|b| &b[..]), Some(&b"br1"[..]));
        assert_eq!(copy.get(Coding::Gzip), None);
        assert_eq!(cell.bytes(), 3);
        assert!(copy.set(Coding::Gzip, Bytes::from_static(b"gz")));
        assert_eq!(cell.get(Coding::Gzip).map(|b| &b[..]), Some(&b"gz"[..]), "a copy made after the first shares");
    }

    #[test]
    fn the_slots_are_allocated_with_the_first_variant() {
        let cell = VariantCell::default();
        assert_eq!((cell.get(Coding::Gzip), cell.bytes(), cell.slots_bytes()), (None, 0, 0));
        assert!(cell.set(Coding::Gzip, Bytes::from_static(b"gz")));
        assert_eq!(cell.slots_bytes(), SLOTS_BYTES);
    }

    #[test]
    fn a_handle_belongs_to_the_object_and_its_refreshed_copies_only() {
        let stored = object("body");
        let handle = stored.encoded.handle(&stored.body);
        assert_eq!(handle.get(Coding::Br), None);
        let refreshed = CachedObject { freshness: stored.freshness, ..stored.clone() };
        assert!(handle.is_of(&stored) && handle.is_of(&refreshed));
        assert!(!handle.is_of(&object("body")), "the same bytes fetched anew are another object");
        assert!(stored.encoded.set(Coding::Br, Bytes::from_static(b"br")));
        assert_eq!(handle.get(Coding::Br), None, "the handle has the variants as they were when served");
        assert_eq!(stored.encoded.handle(&stored.body).get(Coding::Br).map(|b| &b[..]), Some(&b"br"[..]));
    }
}
