//! How payloads become stream entry bytes and back.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns payloads into the bytes of a stream entry's data field and back.
///
/// # Implementing Codec
///
/// `decode(encode(x))` gives `x` back. A `decode` failure is permanent for
/// that entry: the source dead-letters the entry with its raw bytes and
/// never retries it.
pub trait Codec<T>: Send + Sync + 'static {
    /// The bytes of `item`.
    ///
    /// # Errors
    ///
    /// The reason `item` cannot be written (a map with non-string keys in
    /// JSON, for example).
    fn encode(&self, item: &T) -> Result<Vec<u8>, String>;

    /// The payload in `bytes`.
    ///
    /// # Errors
    ///
    /// Why the bytes are not a payload.
    fn decode(&self, bytes: &[u8]) -> Result<T, String>;
}

/// JSON through serde_json: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(&self, item: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(item).map_err(|e| e.to_string())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn encode(&self, item: &Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(item.clone())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}
