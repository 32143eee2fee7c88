//! The cache: keys (normalised URL + `Vary`), stored objects, and the in-memory store they live in.

pub mod encoded;
pub mod fields;
mod header_names;
pub mod hooks;
pub mod key;
pub mod map_lookup;
pub mod object;
mod rendered_head;
mod slots;
pub mod store;
pub mod stored_freshness;
pub mod weighted_list;

pub use encoded::{EncodedVariants, VariantCell};
pub use fields::{Fields, StoredFields};
pub use hooks::{Screened, StoreHooks};
pub use key::{FoundAt, PrimaryKey, VariantKey, VarySpec};
pub use object::CachedObject;
pub use rendered_head::RenderedHead;
pub use store::{EvictionHook, Lookup, Store};
pub use stored_freshness::StoredFreshness;
