//! Counting the GPU memory the crate holds: every buffer and texture made through [`Gpu`] is a [`Counted`] handle
//! that adds its bytes to the device's [`LiveCounts`] when made and takes them off when its last clone drops. A count
//! that grows from one generation to the next is a leak (tests/memory.rs, `dit bench --memory`, the browser's
//! `stats()`).

use serde::Serialize;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Buffers and textures alive on one device, with their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct LiveCounts {
    pub buffers: u64,
    pub buffer_bytes: u64,
    pub textures: u64,
    pub texture_bytes: u64,
}

/// The device's running totals, shared by every [`Counted`] handle made on it.
#[derive(Default, Debug)]
pub(super) struct Live {
    buffers: AtomicU64,
    buffer_bytes: AtomicU64,
    textures: AtomicU64,
    texture_bytes: AtomicU64,
}

impl Live {
    pub(super) fn counts(&self) -> LiveCounts {
        LiveCounts {
            buffers: self.buffers.load(Ordering::Relaxed),
            buffer_bytes: self.buffer_bytes.load(Ordering::Relaxed),
            textures: self.textures.load(Ordering::Relaxed),
            texture_bytes: self.texture_bytes.load(Ordering::Relaxed),
        }
    }

    fn totals(&self, texture: bool) -> (&AtomicU64, &AtomicU64) {
        if texture {
            (&self.textures, &self.texture_bytes)
        } else {
            (&self.buffers, &self.buffer_bytes)
        }
    }
}

/// One resource's share of the totals, given back when dropped.
#[derive(Debug)]
struct Token {
    live: Arc<Live>,
    bytes: u64,
    texture: bool,
}

impl Drop for Token {
    fn drop(&mut self) {
        let (count, bytes) = self.live.totals(self.texture);
        count.fetch_sub(1, Ordering::Relaxed);
        bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A wgpu buffer or texture counted in its device's [`LiveCounts`]; derefs to the wgpu handle. Clones share the
/// count: it is taken off when the last one drops.
#[derive(Clone, Debug)]
pub struct Counted<T> {
    raw: T,
    _token: Arc<Token>,
}

/// A counted storage, uniform or readback buffer.
pub type Buffer = Counted<wgpu::Buffer>;
/// A counted staging or weight texture.
pub type Texture = Counted<wgpu::Texture>;

impl<T> Counted<T> {
    pub(super) fn new(live: &Arc<Live>, raw: T, bytes: u64, texture: bool) -> Counted<T> {
        let (count, total) = live.totals(texture);
        count.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes, Ordering::Relaxed);
        Counted { raw, _token: Arc::new(Token { live: live.clone(), bytes, texture }) }
    }
}

impl<T> Deref for Counted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_count_until_the_last_drops() {
        let live = Arc::new(Live::default());
        let a = Counted::new(&live, (), 64, false);
        let t = Counted::new(&live, (), 1024, true);
        let b = a.clone();
        assert_eq!(live.counts(), LiveCounts { buffers: 1, buffer_bytes: 64, textures: 1, texture_bytes: 1024 });
        drop(a);
        assert_eq!(live.counts().buffers, 1);
        drop(b);
        drop(t);
        assert_eq!(live.counts(), LiveCounts::default());
    }
}
