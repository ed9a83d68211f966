//! A classified error to return without writing one, and the `Result`
//! extension that makes it.

use std::fmt;

use crate::{Classify, ErrorClass};

/// A classified error: any error with its [`ErrorClass`], or a message.
///
/// Return it from a leaf or a worker instead of writing an error type
/// (`.transient()` / `.permanent()` on a `Result` make one, see
/// [`ResultExt`]); weft also keeps a client's error in one, as the cause of
/// a store failure or of a flow's source failing. Cloning shares it (an
/// error can reach several outputs); two causes are equal when their class
/// and message are.
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use std::io;
/// use weft_core::{Cause, Classify, ErrorClass};
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// let cause = Cause::new(refused);
/// assert_eq!(cause.class(), ErrorClass::Transient);
/// assert!(cause.downcast_ref::<io::Error>().is_some());
///
/// let said = Cause::message("disk full", ErrorClass::Permanent);
/// assert_eq!(said.to_string(), "disk full");
/// ```
#[derive(Clone)]
pub struct Cause {
    error: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    class: ErrorClass,
}

impl Cause {
    /// A cause that classifies itself.
    pub fn new<E>(error: E) -> Cause
    where
        E: std::error::Error + Classify + Send + Sync + 'static,
    {
        let class = error.class();
        Cause::with_class(error, class)
    }

    /// A cause of the given class (for errors that do not implement
    /// [`Classify`], such as a client library's).
    pub fn with_class<E>(error: E, class: ErrorClass) -> Cause
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Cause {
            error: std::sync::Arc::new(error),
            class,
        }
    }

    /// A cause that is only a message.
    pub fn message(message: impl Into<String>, class: ErrorClass) -> Cause {
        #[derive(Debug)]
        struct Message(String);
        impl fmt::Display for Message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Message {}
        Cause::with_class(Message(message.into()), class)
    }

    /// The error itself.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The error as its own type, if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.error.downcast_ref()
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cause")
            .field("error", &self.error)
            .field("class", &self.class)
            .finish()
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl Classify for Cause {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        self.class == other.class && self.error.to_string() == other.error.to_string()
    }
}

impl Eq for Cause {}

impl Cause {
    /// A transient error that is only a message.
    pub fn transient(message: impl Into<String>) -> Cause {
        Cause::message(message, ErrorClass::Transient)
    }

    /// A permanent error that is only a message.
    pub fn permanent(message: impl Into<String>) -> Cause {
        Cause::message(message, ErrorClass::Permanent)
    }
}

/// Classifies a `Result`'s error on the spot: `fetch().await.transient()?`
/// in a leaf or a worker whose error type is [`Cause`].
///
/// # Examples
///
/// ```
/// use weft_core::{Cause, Classify, ResultExt};
///
/// fn parse(s: &str) -> Result<u64, Cause> {
///     s.parse::<u64>().permanent() // bad input: retrying cannot help
/// }
/// assert_eq!(parse("42"), Ok(42));
/// assert!(!parse("x").unwrap_err().is_transient());
///
/// let refused: Result<(), std::io::Error> = Err(std::io::ErrorKind::ConnectionRefused.into());
/// assert!(refused.classified().unwrap_err().is_transient()); // the error's own class
/// ```
pub trait ResultExt<T> {
    /// The error, as transient.
    ///
    /// # Errors
    ///
    /// The error of `self`, kept in a transient [`Cause`].
    fn transient(self) -> Result<T, Cause>;

    /// The error, as permanent.
    ///
    /// # Errors
    ///
    /// The error of `self`, kept in a permanent [`Cause`].
    fn permanent(self) -> Result<T, Cause>;

    /// The error, with the class it gives itself.
    ///
    /// # Errors
    ///
    /// The error of `self`, kept in a [`Cause`] of its own class.
    fn classified(self) -> Result<T, Cause>
    where
        Self: Sized;
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn transient(self) -> Result<T, Cause> {
        self.map_err(|e| Cause::with_class(e, ErrorClass::Transient))
    }

    fn permanent(self) -> Result<T, Cause> {
        self.map_err(|e| Cause::with_class(e, ErrorClass::Permanent))
    }

    fn classified(self) -> Result<T, Cause> {
        self.map_err(|e| {
            let class = classify_dyn(&e);
            Cause::with_class(e, class)
        })
    }
}

/// The class of an error of unknown type: its own when it is one weft can
/// classify (an I/O error, a [`Cause`], or a client error behind its
/// feature), looking through its sources; transient otherwise, since an
/// unknown failure of a remote call may well pass.
fn classify_dyn(e: &(dyn std::error::Error + 'static)) -> ErrorClass {
    let mut current = Some(e);
    while let Some(e) = current {
        if let Some(c) = e.downcast_ref::<Cause>() {
            return c.class();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.class();
        }
        if let Some(class) = crate::clients::class_of(e) {
            return class;
        }
        current = e.source();
    }
    ErrorClass::Transient
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classified_looks_through_sources() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let bad = std::io::Error::from(std::io::ErrorKind::InvalidData);
        let r: Result<(), _> = Err(Wrapper(bad));
        assert_eq!(r.classified().unwrap_err().class(), ErrorClass::Permanent);
        let r: Result<(), _> = Err(Wrapper(std::io::ErrorKind::TimedOut.into()));
        assert_eq!(r.classified().unwrap_err().class(), ErrorClass::Transient);
        let r: Result<(), std::fmt::Error> = Err(std::fmt::Error);
        assert_eq!(r.classified().unwrap_err().class(), ErrorClass::Transient);
        let r: Result<(), std::fmt::Error> = Err(std::fmt::Error);
        assert_eq!(r.permanent().unwrap_err().class(), ErrorClass::Permanent);
        assert_eq!(Cause::transient("busy").to_string(), "busy");
        assert!(!Cause::permanent("no").is_transient());
    }
}
