//! Keys built at run time from parts, encoded as the tuple of those parts.

use crate::CoreError;
use crate::key::{KeyBuf, ShardKey};

/// A composite key built at run time, part by part.
///
/// It encodes exactly like a tuple of the same parts, so
/// `CompositeKey::builder().part("user").part(&42u64).build()?` routes like
/// `("user", 42u64)`.
///
/// # Examples
///
/// ```
/// use weft_core::{key_hash, CompositeKey};
///
/// let key = CompositeKey::builder().part("tenant-7").part(&42u64).build()?;
/// assert_eq!(key_hash(&key), key_hash(&("tenant-7", 42u64)));
///
/// // A key with no parts names nothing.
/// assert!(CompositeKey::builder().build().is_err());
/// # Ok::<(), weft_core::CoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CompositeKey {
    bytes: Vec<u8>,
}

impl CompositeKey {
    /// Starts a key with no parts.
    pub fn builder() -> CompositeKeyBuilder {
        CompositeKeyBuilder {
            buf: KeyBuf::new(),
            parts: 0,
        }
    }

    /// The encoded bytes (each part length-delimited).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for CompositeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CompositeKey").field(&self.bytes).finish()
    }
}

impl ShardKey for CompositeKey {
    fn write_key(&self, out: &mut KeyBuf) {
        out.extend_from_slice(&self.bytes);
    }
    fn as_key_bytes(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

/// Builds a [`CompositeKey`]; see [`CompositeKey::builder`].
#[derive(Debug, Clone)]
pub struct CompositeKeyBuilder {
    buf: KeyBuf,
    parts: usize,
}

impl CompositeKeyBuilder {
    /// Appends one part.
    #[must_use]
    pub fn part<K: ShardKey + ?Sized>(mut self, part: &K) -> Self {
        self.buf.push_part(part);
        self.parts += 1;
        self
    }

    /// Finishes the key.
    ///
    /// # Errors
    ///
    /// [`CoreError::EmptyCompositeKey`] if no part was added.
    pub fn build(self) -> Result<CompositeKey, CoreError> {
        if self.parts == 0 {
            return Err(CoreError::EmptyCompositeKey);
        }
        Ok(CompositeKey {
            bytes: self.buf.as_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<K: ShardKey + ?Sized>(key: &K) -> Vec<u8> {
        key.with_key_bytes(|b| b.to_vec())
    }

    #[test]
    fn composite_key_encodes_like_the_tuple() {
        let k = CompositeKey::builder()
            .part("a")
            .part(&7u32)
            .part(&("x", "y"))
            .build()
            .unwrap();
        assert_eq!(k.as_bytes(), bytes(&("a", 7u32, ("x", "y"))).as_slice());
        assert_eq!(
            CompositeKey::builder().build(),
            Err(CoreError::EmptyCompositeKey)
        );
    }
}
