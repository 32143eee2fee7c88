//! Large bodies kept in the pages of one anonymous memory file (`memfd`), so that a plain-HTTP connection can send
//! them with `sendfile`: the kernel hands the pages to the socket by reference instead of copying every body into
//! the socket on the proxy's core (nginx gets the same from cached files on tmpfs). Bodies stay ordinary [`Bytes`]
//! for everything else (TLS, compression, ranges, peers): the file is mapped read-only into the process.
//!
//! The file is sparse and as large as the node's cache; space is handed out in whole pages by an offset allocator,
//! one run of pages per body. A body's pages are given back when its last `Bytes` is dropped: first punched out of
//! the file (`fallocate(PUNCH_HOLE)`), then returned to the allocator. Punching before reuse is what makes sends by
//! reference safe: a page still queued in a socket keeps its old contents, and the next body written at that
//! offset gets fresh pages. No page is ever shared by two bodies, so no punch touches a neighbour's data.
//!
//! The crate denies `unsafe` code; this module is the exception, for the mapping (made, read as slices, unmade).
//! Each block says why it is sound.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use offset_allocator::{Allocation, Allocator};
use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// The smallest body worth its own pages. Below it a body is one copy inside the response's single `writev`,
/// cheaper than the second system call `sendfile` needs; from it on, the copy costs more than the call.
pub const MIN_BODY: usize = 8 * 1024;

/// The most runs of pages the allocator tracks (its bookkeeping is ~20 B per run, made up front): enough for a
/// 16 GiB cache of bodies at the smallest size kept here. Past it, bodies stay on the heap.
const MAX_RUNS: u32 = 2 * 1024 * 1024;

/// Why the memory file could not be set up (the node then keeps every body on the heap).
#[derive(Debug, thiserror::Error)]
pub enum BodyPagesError {
    #[error("memfd_create failed: {0}")]
    Create(rustix::io::Errno),
    #[error("sizing the memory file to {size} bytes failed: {errno}")]
    Size { size: u64, errno: rustix::io::Errno },
    #[error("mapping the memory file ({size} bytes) failed: {errno}")]
    Map { size: u64, errno: rustix::io::Errno },
    #[error("a memory file of {0} bytes is more pages than the allocator counts")]
    TooLarge(u64),
}

/// One node's memory file of bodies.
pub struct BodyPages {
    file: OwnedFd,
    /// Address of the read-only mapping of the whole file (kept as an address: it is only compared, and turned
    /// into slices by [`PageRun::as_ref`]).
    base: usize,
    size: usize,
    page: usize,
    allocator: Mutex<Allocator>,
}

impl std::fmt::Debug for BodyPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyPages").field("size", &self.size).finish_non_exhaustive()
    }
}

impl BodyPages {
    /// A memory file of `capacity` bytes (rounded up to whole pages), mapped and empty. Costs address space
    /// only: pages are taken when bodies are written.
    pub fn new(capacity: u64) -> Result<Arc<BodyPages>, BodyPagesError> {
        let page = rustix::param::page_size();
        let pages = capacity.div_ceil(page as u64).max(1);
        let units = u32::try_from(pages).map_err(|_| BodyPagesError::TooLarge(capacity))?;
        let size = pages * page as u64;
        let length = usize::try_from(size).map_err(|_| BodyPagesError::TooLarge(capacity))?;
        let file = rustix::fs::memfd_create("edgecache-bodies", MemfdFlags::CLOEXEC).map_err(BodyPagesError::Create)?;
        rustix::fs::ftruncate(&file, size).map_err(|errno| BodyPagesError::Size { size, errno })?;
        // SAFETY: a new mapping at an address the kernel chooses (null hint) overlaps no existing Rust object.
        // It is read-only: nothing in this process writes through it; bodies are written with `pwrite` into
        // pages that no `PageRun` covers yet (see `adopt`). It is unmapped only in `Drop`, when no `PageRun`
        // (each holds an `Arc<BodyPages>`) and so no slice into it is left.
        let mapped = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                length,
                ProtFlags::READ,
                MapFlags::SHARED | MapFlags::NORESERVE,
                &file,
                0,
            )
        }
        .map_err(|errno| BodyPagesError::Map { size, errno })?;
        // Every run is at least MIN_BODY long, so there are never more runs than this.
        let runs = MAX_RUNS.min(units / (MIN_BODY / page).max(1) as u32 + 1);
        Ok(Arc::new(BodyPages {
            file,
            base: mapped as usize,
            size: length,
            page,
            allocator: Mutex::new(Allocator::with_max_allocs(units, runs)),
        }))
    }

    /// `body` copied into pages of the file, as `Bytes` that give the pages back when dropped; `None` when the
    /// body is below [`MIN_BODY`], already in this file, or no run of pages is free (it then stays where it is).
    pub fn adopt(self: &Arc<Self>, body: &Bytes) -> Option<Bytes> {
        if body.len() < MIN_BODY || self.offset_of(body).is_some() {
            return None;
        }
        let pages = u32::try_from(body.len().div_ceil(self.page)).ok()?;
        let allocation = self.allocator.lock().ok()?.allocate(pages)?;
        let offset = allocation.offset as usize * self.page;
        let run = PageRun { pages: self.clone(), allocation, offset, len: body.len() };
        // The run's pages are fresh (punched when their last body left) and no slice covers them until the
        // `Bytes` below exists, so writing them here races with no reader.
        let mut written = 0;
        while written < body.len() {
            match rustix::io::pwrite(&self.file, &body[written..], (offset + written) as u64) {
                Ok(0) | Err(_) => return None, // `run` drops: its pages go back
                Ok(n) => written += n,
            }
        }
        Some(Bytes::from_owner(run))
    }

    /// Where `bytes` start in the file, if they lie wholly inside it.
    pub fn offset_of(&self, bytes: &[u8]) -> Option<u64> {
        let start = bytes.as_ptr() as usize;
        let end = start.checked_add(bytes.len())?;
        (start >= self.base && end <= self.base + self.size).then(|| (start - self.base) as u64)
    }

    /// The file, for `sendfile`.
    pub fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Pages currently free, in bytes (for tests and metrics).
    pub fn free_bytes(&self) -> u64 {
        let free = self.allocator.lock().map(|allocator| allocator.storage_report().total_free_space).unwrap_or(0);
        u64::from(free) * self.page as u64
    }

    fn release(&self, allocation: Allocation, offset: usize, len: usize) {
        let span = len.div_ceil(self.page) * self.page;
        // Punch first: a page still queued in a socket keeps its contents, and the run's next body gets new pages.
        // If the punch fails the pages cannot be reused safely, so the run is not given back.
        let punched = rustix::fs::fallocate(
            &self.file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset as u64,
            span as u64,
        );
        if punched.is_ok()
            && let Ok(mut allocator) = self.allocator.lock()
        {
            allocator.free(allocation);
        }
    }
}

impl Drop for BodyPages {
    fn drop(&mut self) {
        // SAFETY: `base`/`size` are the mapping made in `new`; every `PageRun` holds an `Arc<BodyPages>`, so when
        // this runs no slice into the mapping is left.
        let _ = unsafe { rustix::mm::munmap(self.base as *mut std::ffi::c_void, self.size) };
    }
}

/// One body's run of pages: the owner behind a body's `Bytes`.
struct PageRun {
    pages: Arc<BodyPages>,
    allocation: Allocation,
    offset: usize,
    len: usize,
}

impl AsRef<[u8]> for PageRun {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `offset + len` lies inside the mapping (the allocator hands out runs inside `size`, and `len`
        // fits the run's pages). The mapping lives as long as `self.pages`. Its pages hold this body's bytes,
        // written in full before this run was put in a `Bytes`, and nothing changes them while the run lives:
        // the mapping is read-only, `adopt` writes only runs no `PageRun` covers, and the run is punched only
        // in `Drop`.
        unsafe { std::slice::from_raw_parts((self.pages.base + self.offset) as *const u8, self.len) }
    }
}

impl Drop for PageRun {
    fn drop(&mut self) {
        self.pages.release(self.allocation, self.offset, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(len: usize, seed: u8) -> Bytes {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>().into()
    }

    #[test]
    fn an_adopted_body_reads_back_the_same_and_lies_in_the_file() {
        let pages = BodyPages::new(1 << 20).expect("memfd");
        let original = body(20_000, 7);
        let adopted = pages.adopt(&original).expect("adopted");
        assert_eq!(adopted, original);
        assert!(pages.offset_of(&adopted).is_some());
        assert!(pages.offset_of(&original).is_none());
        let tail = adopted.slice(9_000..);
        assert_eq!(pages.offset_of(&tail), pages.offset_of(&adopted).map(|start| start + 9_000));
    }

    #[test]
    fn small_bodies_and_bodies_already_in_the_file_are_left_alone() {
        let pages = BodyPages::new(1 << 20).expect("memfd");
        assert!(pages.adopt(&body(MIN_BODY - 1, 1)).is_none());
        let adopted = pages.adopt(&body(MIN_BODY, 1)).expect("adopted");
        assert!(pages.adopt(&adopted).is_none());
    }

    #[test]
    fn dropping_the_last_copy_gives_the_pages_back_and_a_reused_run_holds_the_new_body() {
        let pages = BodyPages::new(64 * 1024).expect("memfd");
        let empty = pages.free_bytes();
        let first = pages.adopt(&body(60_000, 1)).expect("adopted");
        let copy = first.clone();
        assert!(pages.adopt(&body(60_000, 2)).is_none(), "the file is full");
        drop(first);
        assert!(pages.free_bytes() < empty, "a copy still holds the pages");
        assert_eq!(copy, body(60_000, 1));
        drop(copy);
        assert_eq!(pages.free_bytes(), empty);
        let second = pages.adopt(&body(60_000, 2)).expect("adopted after the free");
        assert_eq!(second, body(60_000, 2));
    }
}
