//! [`Classify`](crate::Classify) for the errors of the clients services
//! call through, each behind the cargo feature of its name so that nobody
//! pays for the others: `tonic` (gRPC status codes), `redis`, `hyper`.
//! `std::io::Error` is classified always.

use crate::ErrorClass;

/// The class of `e` if it is an error of an enabled client.
#[allow(unused_variables)] // with no client feature on
pub(crate) fn class_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    #[cfg(feature = "tonic")]
    if let Some(status) = e.downcast_ref::<tonic::Status>() {
        return Some(crate::Classify::class(status));
    }
    #[cfg(feature = "redis")]
    if let Some(error) = e.downcast_ref::<redis::RedisError>() {
        return Some(crate::Classify::class(error));
    }
    #[cfg(feature = "hyper")]
    if let Some(error) = e.downcast_ref::<hyper::Error>() {
        return Some(crate::Classify::class(error));
    }
    None
}

#[cfg(any(feature = "tonic", feature = "redis", feature = "hyper"))]
fn class(transient: bool) -> ErrorClass {
    if transient {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// By status code, as gRPC's retry guidance reads them: `UNAVAILABLE`,
/// `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `ABORTED` and `CANCELLED`
/// describe a moment and are transient; the rest (bad arguments, missing
/// or existing entities, permissions, internal errors, unimplemented
/// methods) are permanent.
#[cfg(feature = "tonic")]
impl crate::Classify for tonic::Status {
    fn class(&self) -> ErrorClass {
        use tonic::Code;
        class(matches!(
            self.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Cancelled
        ))
    }
}

/// A refused, dropped or timed-out connection, an I/O error, and the
/// server's "try again" answers (loading, `TRYAGAIN`, cluster or master
/// down, a slot that moved) are transient; the rest (a wrong type, a script
/// error, no permission) are permanent.
#[cfg(feature = "redis")]
impl crate::Classify for redis::RedisError {
    fn class(&self) -> ErrorClass {
        use redis::{ErrorKind, ServerErrorKind as S};
        class(
            self.is_connection_refusal()
                || self.is_timeout()
                || self.is_io_error()
                || self.is_connection_dropped()
                || matches!(
                    self.kind(),
                    ErrorKind::Server(
                        S::BusyLoading
                            | S::TryAgain
                            | S::ClusterDown
                            | S::MasterDown
                            | S::Moved
                            | S::Ask
                    )
                ),
        )
    }
}

/// A closed or cancelled connection, a timeout or an incomplete message are
/// transient; a parse error or a misuse of the API is permanent.
#[cfg(feature = "hyper")]
impl crate::Classify for hyper::Error {
    fn class(&self) -> ErrorClass {
        class(
            self.is_closed()
                || self.is_canceled()
                || self.is_timeout()
                || self.is_incomplete_message()
                || self.is_body_write_aborted(),
        )
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "tonic")]
    #[test]
    fn grpc_codes_are_classified_by_their_meaning() {
        use crate::Classify;
        use tonic::{Code, Status};
        assert!(Status::new(Code::Unavailable, "").is_transient());
        assert!(Status::new(Code::DeadlineExceeded, "").is_transient());
        assert!(!Status::new(Code::InvalidArgument, "").is_transient());
        assert!(!Status::new(Code::NotFound, "").is_transient());
        assert!(!Status::new(Code::Internal, "").is_transient());
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_errors_are_classified_by_kind() {
        use crate::Classify;
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(refused.is_transient());
        let parse = redis::RedisError::from((redis::ErrorKind::Parse, "bad reply"));
        assert!(!parse.is_transient());
    }
}
