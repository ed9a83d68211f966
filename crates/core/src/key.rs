//! Stable key bytes: the encoding every weft pattern hashes.
//!
//! A key's bytes must be the same on every platform, in every process and in
//! every release, or two services disagree on who owns a key. That rules out
//! `std::hash::Hash`, whose output depends on pointer width, on the hasher's
//! random seed and on how each type chooses to feed it.
//!
//! See [`ShardKey`] for the encoding.

use std::sync::Arc;

/// A value with a stable byte encoding, usable as a shard key.
///
/// # Encoding
///
/// | key | bytes |
/// |---|---|
/// | `str`, `String` | the UTF-8 bytes, as they are |
/// | `[u8]`, `Vec<u8>`, `[u8; N]` | the bytes, as they are |
/// | `u8` … `u128`, `i8` … `i128` | little-endian, the type's full width (`1u32` is `01 00 00 00`; signed values in two's complement) |
/// | tuples, [`CompositeKey`](crate::CompositeKey) | for each part: its length as unsigned LEB128, then its bytes |
///
/// `usize` and `isize` are not keys: their width depends on the platform.
/// Keys carry no type tag, so `"\u{1}"` and `1u8` encode alike; one key space
/// should use one key type.
///
/// Length-delimiting the parts of a composite key is what keeps
/// `("ab", "c")` and `("a", "bc")` apart; a plain concatenation would send
/// them to the same shard. A tuple and a [`CompositeKey`](crate::CompositeKey) with the same parts
/// encode alike, so a key built at run time routes like the static one.
///
/// # Implementing ShardKey
///
/// The bytes written must depend only on the key's value: never on the
/// platform, the process, the build or the release. Changing them for an
/// existing type moves keys between shards and is a breaking change.
/// Composite types should encode through [`CompositeKey`](crate::CompositeKey) or a tuple rather
/// than concatenate their fields.
///
/// # Examples
///
/// ```
/// use weft_core::{KeyBuf, ShardKey};
///
/// let mut buf = KeyBuf::new();
/// ("ab", "c").write_key(&mut buf);
/// assert_eq!(buf.as_bytes(), b"\x02ab\x01c");
///
/// buf.clear();
/// 1u32.write_key(&mut buf);
/// assert_eq!(buf.as_bytes(), [1, 0, 0, 0]);
/// ```
pub trait ShardKey {
    /// Appends this key's stable bytes to `out`.
    fn write_key(&self, out: &mut KeyBuf);

    /// This key's bytes as one borrowed slice, when the key already holds
    /// them in that form (strings and byte slices); `None` otherwise.
    ///
    /// Hashers use it to skip the copy into a [`KeyBuf`]. An implementation
    /// that returns `Some` must return exactly the bytes `write_key` writes.
    fn as_key_bytes(&self) -> Option<&[u8]> {
        None
    }

    /// The number of bytes [`write_key`](ShardKey::write_key) writes, when
    /// it is known without encoding (strings, byte slices, integers).
    ///
    /// Composite keys use it to write a part's length prefix before the
    /// part. An implementation that returns `Some` must return exactly that
    /// length.
    fn encoded_len(&self) -> Option<usize> {
        self.as_key_bytes().map(<[u8]>::len)
    }

    /// Calls `f` with this key's stable bytes.
    ///
    /// Strings and byte slices are passed through without a copy, integers
    /// from a stack array, and other keys are encoded into a [`KeyBuf`],
    /// which stays on the stack for keys of up to [`KeyBuf::INLINE`] bytes:
    /// routing a key does not allocate. An override must pass exactly the
    /// bytes `write_key` writes.
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self.as_key_bytes() {
            Some(bytes) => f(bytes),
            None => {
                let mut buf = KeyBuf::new();
                self.write_key(&mut buf);
                f(buf.as_bytes())
            }
        }
    }
}

/// A byte buffer for encoding keys that keeps short keys on the stack.
#[derive(Clone)]
pub struct KeyBuf {
    len: usize,
    inline: [u8; KeyBuf::INLINE],
    heap: Vec<u8>,
}

impl KeyBuf {
    /// Keys of up to this many bytes are encoded without allocating.
    pub const INLINE: usize = 64;

    /// An empty buffer.
    #[inline]
    pub const fn new() -> Self {
        KeyBuf {
            len: 0,
            inline: [0; KeyBuf::INLINE],
            heap: Vec::new(),
        }
    }

    /// Appends `bytes`.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if self.heap.is_empty() && end <= Self::INLINE {
            self.inline[self.len..end].copy_from_slice(bytes);
        } else {
            if self.heap.is_empty() {
                self.heap.reserve(end.max(2 * Self::INLINE));
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.extend_from_slice(bytes);
        }
        self.len = end;
    }

    /// The bytes written so far.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    /// Number of bytes written.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the buffer, keeping any heap capacity.
    pub fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }

    /// Appends `part` as one length-delimited part of a composite key.
    pub fn push_part<K: ShardKey + ?Sized>(&mut self, part: &K) {
        if let Some(len) = part.encoded_len() {
            let (prefix, n) = leb128(len);
            self.extend_from_slice(&prefix[..n]);
            part.write_key(self);
            return;
        }
        // Encode the part in place, then slide it right to make room for its
        // length prefix: no second buffer.
        let start = self.len;
        part.write_key(self);
        let (prefix, n) = leb128(self.len - start);
        self.extend_from_slice(&prefix[..n]);
        let bytes = self.as_bytes_mut();
        bytes[start..].rotate_right(n);
        bytes[start..start + n].copy_from_slice(&prefix[..n]);
    }

    #[inline]
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

/// Unsigned LEB128: seven bits per byte, the high bit set on all but the
/// last. A length needs at most ten bytes.
#[inline]
fn leb128(len: usize) -> ([u8; 10], usize) {
    let mut v = len as u64;
    let mut out = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[n] = byte;
            return (out, n + 1);
        }
        out[n] = byte | 0x80;
        n += 1;
    }
}

impl Default for KeyBuf {
    fn default() -> Self {
        KeyBuf::new()
    }
}

impl std::fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyBuf").field(&self.as_bytes()).finish()
    }
}

impl ShardKey for str {
    fn write_key(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self.as_bytes());
    }
    fn as_key_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl ShardKey for String {
    fn write_key(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self.as_bytes());
    }
    fn as_key_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl ShardKey for [u8] {
    fn write_key(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self);
    }
    fn as_key_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl<const N: usize> ShardKey for [u8; N] {
    fn write_key(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self);
    }
    fn as_key_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ShardKey for Vec<u8> {
    fn write_key(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self);
    }
    fn as_key_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

macro_rules! forward_key {
    ($($ty:ty),*) => {$(
        impl<K: ShardKey + ?Sized> ShardKey for $ty {
            fn write_key(&self, out: &mut KeyBuf) {
                (**self).write_key(out)
            }
            fn as_key_bytes(&self) -> Option<&[u8]> {
                (**self).as_key_bytes()
            }
            fn encoded_len(&self) -> Option<usize> {
                (**self).encoded_len()
            }
            fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                (**self).with_key_bytes(f)
            }
        }
    )*};
}
forward_key!(&K, &mut K, Box<K>, Arc<K>);

macro_rules! int_key {
    ($($ty:ty),*) => {$(
        impl ShardKey for $ty {
            fn write_key(&self, out: &mut KeyBuf) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn encoded_len(&self) -> Option<usize> {
                Some(size_of::<$ty>())
            }
            fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(&self.to_le_bytes())
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

macro_rules! tuple_key {
    ($($name:ident)+) => {
        impl<$($name: ShardKey),+> ShardKey for ($($name,)+) {
            fn write_key(&self, out: &mut KeyBuf) {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                $(out.push_part($name);)+
            }
        }
    };
}
tuple_key!(A);
tuple_key!(A B);
tuple_key!(A B C);
tuple_key!(A B C D);
tuple_key!(A B C D E);
tuple_key!(A B C D E F);
tuple_key!(A B C D E F G);
tuple_key!(A B C D E F G H);

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<K: ShardKey + ?Sized>(k: &K) -> Vec<u8> {
        let mut b = KeyBuf::new();
        k.write_key(&mut b);
        b.as_bytes().to_vec()
    }

    #[test]
    fn composite_parts_are_length_delimited() {
        assert_ne!(bytes(&("ab", "c")), bytes(&("a", "bc")));
        assert_eq!(bytes(&("ab", "c")), b"\x02ab\x01c");
        assert_ne!(bytes(&("", "x")), bytes(&("x", "")));
    }

    #[test]
    fn integers_are_little_endian_at_full_width() {
        assert_eq!(bytes(&1u16), [1, 0]);
        assert_eq!(bytes(&-1i32), [0xff; 4]);
        assert_eq!(bytes(&0x0102_0304_0506_0708u64), [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(bytes(&1u128).len(), 16);
    }

    #[test]
    fn long_parts_get_multi_byte_lengths_and_spill_to_the_heap() {
        let part = vec![7u8; 300];
        let encoded = bytes(&(part.clone(), 1u8));
        // 300 = 0b10_0101100 -> 0xac 0x02
        assert_eq!(&encoded[..2], &[0xac, 0x02]);
        assert_eq!(&encoded[2..302], &part[..]);
        assert_eq!(&encoded[302..], &[1, 1]);
    }

    #[test]
    fn contiguous_bytes_match_written_bytes() {
        let s = String::from("héllo");
        assert_eq!(s.as_key_bytes().unwrap(), bytes(&s).as_slice());
        let v = vec![1u8, 2, 3];
        assert_eq!(ShardKey::as_key_bytes(&&v).unwrap(), bytes(&v).as_slice());
    }
}
