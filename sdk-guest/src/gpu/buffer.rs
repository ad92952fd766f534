//! [`Buffer`]: GPU memory the job fills, binds to dispatches and reads back.

use std::fmt;

use bytemuck::Pod;

use super::bindings::netmind::gpu::compute as wit;
use super::{Error, Result, in_host};

/// A buffer in GPU memory, usable as a storage or uniform binding; zero-filled when created and freed
/// when dropped.
///
/// Sizes, offsets and lengths are in bytes and must be multiples of 4 (the host's rule). The typed
/// constructors round the size up to a multiple of 4 (at least 4) and zero-fill the padding, so
/// `Buffer::from_slice(&[1u8, 2, 3])` makes a 4-byte buffer `[1, 2, 3, 0]`; [`read`](Self::read) drops
/// the padding again when it converts back. Elements are any [`bytemuck::Pod`] type (`f32`, `u32`,
/// `[f32; 4]`, `#[derive(Pod, Zeroable)] #[repr(C)]` structs, ...); WGSL sees their little-endian bytes,
/// so a struct must follow WGSL's layout rules (e.g. a `vec3<f32>` takes 16 bytes).
pub struct Buffer {
    inner: wit::Buffer,
    size: u64,
}

impl Buffer {
    /// A zero-filled buffer of `size` bytes.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] when `size` is 0 or not a multiple of 4, [`Error::LimitExceeded`] above
    /// [`Limits::max_buffer_size`](super::Limits::max_buffer_size), [`Error::QuotaExceeded`] when the
    /// job would hold more GPU memory or buffers than it may.
    pub fn new(size: u64) -> Result<Self> {
        in_host()?;
        let inner = wit::Buffer::create(size)?;
        Ok(Self { inner, size })
    }

    /// A zero-filled buffer for `len` elements of `T`: `len * size_of::<T>()` bytes rounded up to a
    /// multiple of 4 (at least 4).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn zeroed<T: Pod>(len: usize) -> Result<Self> {
        Self::new(padded_len(byte_len::<T>(len)?))
    }

    /// A buffer holding `data`: its bytes, zero-padded to a multiple of 4 (at least 4 bytes, so an empty
    /// slice gives a 4-byte zero buffer).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new) and [`write`](Self::write).
    pub fn from_slice<T: Pod>(data: &[T]) -> Result<Self> {
        Self::from_bytes(bytemuck::cast_slice(data))
    }

    /// A buffer holding `bytes`, zero-padded to a multiple of 4 (at least 4 bytes).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new) and [`write`](Self::write).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let size = padded_len(bytes.len() as u64);
        let buffer = Self::new(size)?;
        if bytes.is_empty() {
            return Ok(buffer);
        }
        if bytes.len() as u64 == size {
            buffer.write_bytes(0, bytes)?;
        } else {
            let mut padded = Vec::with_capacity(size as usize);
            padded.extend_from_slice(bytes);
            padded.resize(size as usize, 0);
            buffer.write_bytes(0, &padded)?;
        }
        Ok(buffer)
    }

    /// The buffer's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes `data` at byte `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] when `offset` or the data's length in bytes is not a multiple of 4 (checked
    /// here, before the call: unlike the constructors, a write is never padded, as that would overwrite
    /// the bytes after it), or when the range does not fit in the buffer.
    pub fn write<T: Pod>(&self, offset: u64, data: &[T]) -> Result<()> {
        self.write_bytes(offset, bytemuck::cast_slice(data))
    }

    /// Writes `bytes` at byte `offset`; see [`write`](Self::write).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn write_bytes(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        if !bytes.len().is_multiple_of(4) {
            return Err(Error::OutOfRange(format!(
                "a write of {} bytes: the length must be a multiple of 4; pad the data",
                bytes.len()
            )));
        }
        in_host()?;
        self.inner.write(offset, bytes)?;
        Ok(())
    }

    /// The whole buffer as elements of `T` (trailing bytes that do not fill a whole `T`, such as the
    /// padding of [`from_slice`](Self::from_slice), are left out).
    ///
    /// # Errors
    ///
    /// The host's error; after a [`Error::Timeout`] or [`Error::DeviceLost`] every read fails.
    pub fn read<T: Pod>(&self) -> Result<Vec<T>> {
        let bytes = self.read_bytes(0, self.size)?;
        Ok(cast_vec(&bytes))
    }

    /// `len` elements of `T` starting at byte `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] when `offset` is not a multiple of 4 or the range does not fit in the buffer.
    pub fn read_range<T: Pod>(&self, offset: u64, len: usize) -> Result<Vec<T>> {
        let bytes = byte_len::<T>(len)?;
        let mut data = self.read_bytes(offset, bytes.next_multiple_of(4))?;
        data.truncate(bytes as usize);
        Ok(cast_vec(&data))
    }

    /// `len` bytes at byte `offset` (both multiples of 4).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] when the range is not aligned or does not fit in the buffer.
    pub fn read_bytes(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        in_host()?;
        let bytes = self.inner.read(offset, len)?;
        if bytes.len() as u64 != len {
            return Err(Error::Internal(format!(
                "the host returned {} bytes for a read of {len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// The raw WIT resource, for code that calls [`super::bindings`] directly.
    #[doc(hidden)]
    pub fn as_raw(&self) -> &wit::Buffer {
        &self.inner
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("handle", &self.inner.handle())
            .field("size", &self.size)
            .finish()
    }
}

/// `len` elements of `T` in bytes.
fn byte_len<T>(len: usize) -> Result<u64> {
    len.checked_mul(size_of::<T>())
        .map(|n| n as u64)
        .ok_or_else(|| Error::OutOfRange(format!("{len} elements overflow the address space")))
}

/// `len` rounded up to a multiple of 4, at least 4: a size the host accepts.
pub(crate) fn padded_len(len: u64) -> u64 {
    len.next_multiple_of(4).max(4)
}

/// `bytes` as `T`s, whatever their alignment; trailing bytes that do not fill a `T` are dropped.
fn cast_vec<T: Pod>(bytes: &[u8]) -> Vec<T> {
    const { assert!(size_of::<T>() > 0, "zero-sized elements cannot be read") };
    let mut values = vec![T::zeroed(); bytes.len() / size_of::<T>()];
    let whole = values.len() * size_of::<T>();
    bytemuck::cast_slice_mut::<T, u8>(&mut values).copy_from_slice(&bytes[..whole]);
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_padded_to_whole_words() {
        assert_eq!(padded_len(0), 4);
        assert_eq!(padded_len(3), 4);
        assert_eq!(padded_len(4), 4);
        assert_eq!(padded_len(13), 16);
        assert_eq!(byte_len::<f32>(5).unwrap(), 20);
        assert_eq!(byte_len::<[u8; 3]>(3).unwrap(), 9);
        assert!(matches!(
            byte_len::<u64>(usize::MAX),
            Err(Error::OutOfRange(_))
        ));
    }

    #[test]
    fn cast_vec_drops_padding_and_ignores_alignment() {
        let bytes = [1u8, 0, 0, 0, 2, 0, 0, 0, 9, 9];
        assert_eq!(cast_vec::<u32>(&bytes), [1, 2]);
        // An odd start: the bytes are copied, so misalignment is fine.
        assert_eq!(cast_vec::<u16>(&bytes[1..5]), [0, 0x200]);
        assert_eq!(cast_vec::<u8>(&bytes[..3]), [1, 0, 0]);
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn natively_every_call_says_no_adapter() {
        let err = Buffer::new(16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no-adapter: GPU calls only work inside a NetMind host"
        );
        assert!(matches!(
            Buffer::from_slice(&[1.0f32, 2.0]),
            Err(Error::NoAdapter(_))
        ));
    }
}
