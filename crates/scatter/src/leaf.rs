//! Leaves: any async function of a sub-request and a [`LeafContext`].

use std::fmt::Display;
use std::future::Future;

use tokio::time::Instant;
use weft_core::{Classify, ShardId};

/// What a leaf call knows about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafContext {
    /// The shard this call answers for.
    pub shard: ShardId,
    /// The replica it is sent to (an index into the topology's replicas).
    pub replica: usize,
    /// 1 for the first attempt at this shard, 2 for the next (a hedge or a
    /// retry), and so on.
    pub attempt: u32,
    /// Whether this attempt is a hedge (sent while another is in flight).
    pub hedge: bool,
    /// When the whole call gives up; pass it on to the leaf's own I/O.
    pub deadline: Instant,
}

impl LeafContext {
    /// Time left before the call's deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A leaf: answers one sub-request for one shard from one replica.
///
/// Implemented for every `Fn(Req, LeafContext) -> impl Future<Output =
/// Result<T, E>>` whose error says whether it is transient
/// ([`Classify`]); with the `tower` feature, `ServiceLeaf` adapts a
/// `tower::Service`.
///
/// # Cancel safety
///
/// The root drops a leaf's future when another replica answered first, when
/// the attempt timed out, when the deadline passed, or when the caller
/// dropped the call. Leaves must tolerate being dropped at any await point.
pub trait Leaf<Req> {
    /// A successful answer.
    type Response;
    /// A failure, transient or permanent.
    type Error: Classify + Display;
    /// The call in flight.
    type Future: Future<Output = Result<Self::Response, Self::Error>>;

    /// Sends `request` to the replica in `cx`.
    fn call(&self, request: Req, cx: LeafContext) -> Self::Future;
}

impl<Req, F, Fut, T, E> Leaf<Req> for F
where
    F: Fn(Req, LeafContext) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + Display,
{
    type Response = T;
    type Error = E;
    type Future = Fut;

    fn call(&self, request: Req, cx: LeafContext) -> Fut {
        self(request, cx)
    }
}

#[cfg(feature = "tower")]
pub use service::{Mode, Plain, ServiceError, ServiceLeaf, WithContext};

#[cfg(feature = "tower")]
mod service {
    use std::fmt;
    use std::future::Future;
    use std::marker::PhantomData;
    use std::pin::Pin;
    use std::sync::Arc;

    use tower::{Service, ServiceExt};
    use weft_core::{Classify, ErrorClass};

    use super::{Leaf, LeafContext};

    /// Leaves that call `tower` services (feature `tower`).
    ///
    /// - [`per_replica`](ServiceLeaf::per_replica): one service per replica
    ///   (a client per server), the one for `cx.replica` called: the usual
    ///   shape for real network services.
    /// - [`with_context`](ServiceLeaf::with_context): one service that
    ///   receives `(request, LeafContext)` and targets the replica itself.
    /// - [`new`](ServiceLeaf::new): one service for every shard and replica.
    ///
    /// Each call clones the service, waits until it is ready and calls it.
    /// `classify` says which of the service's errors are transient; the
    /// error itself is kept in [`ServiceError`] (its `source()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use weft_core::{Count, ErrorClass};
    /// use weft_scatter::{Plan, Scatter, ScatterConfig, ServiceLeaf, Topology};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// // Two shards × two replicas: replica r is served by client r.
    /// let clients = (0..4)
    ///     .map(|r| tower::service_fn(move |q: &'static str| async move { Ok::<_, std::io::Error>((q, r)) }))
    ///     .collect();
    /// let leaf = ServiceLeaf::per_replica(clients, |e: &std::io::Error| weft_core::Classify::class(e));
    /// let root = Scatter::new(Topology::sharded(2, 2)?, leaf, ScatterConfig::new(Duration::from_millis(50)))?;
    /// let g = root.gather(Plan::broadcast(2, "q"), &Count::new()).await?;
    /// assert_eq!(g.require_complete()?, 2);
    /// # Ok::<(), weft_scatter::ScatterError>(())
    /// # }).unwrap();
    /// ```
    pub struct ServiceLeaf<S, C, M = Plain> {
        services: Arc<[S]>,
        per_replica: bool,
        classify: C,
        mode: PhantomData<fn() -> M>,
    }

    /// The request alone goes to the service.
    #[derive(Debug, Clone, Copy)]
    pub struct Plain;

    /// The service receives `(request, LeafContext)`.
    #[derive(Debug, Clone, Copy)]
    pub struct WithContext;

    impl<S, C> ServiceLeaf<S, C, Plain> {
        /// One service for every shard and replica; `classify` sorts its
        /// errors.
        pub fn new(service: S, classify: C) -> Self {
            ServiceLeaf {
                services: Arc::from(vec![service]),
                per_replica: false,
                classify,
                mode: PhantomData,
            }
        }

        /// One service per replica of the topology, by replica index; an
        /// attempt at a replica without a service fails permanently, naming
        /// it.
        pub fn per_replica(services: Vec<S>, classify: C) -> Self {
            ServiceLeaf {
                services: Arc::from(services),
                per_replica: true,
                classify,
                mode: PhantomData,
            }
        }
    }

    impl<S, C> ServiceLeaf<S, C, WithContext> {
        /// One service that receives each request with its [`LeafContext`]
        /// (shard, replica, attempt, hedge, deadline).
        pub fn with_context(service: S, classify: C) -> Self {
            ServiceLeaf {
                services: Arc::from(vec![service]),
                per_replica: false,
                classify,
                mode: PhantomData,
            }
        }
    }

    impl<S, C, M> ServiceLeaf<S, C, M> {
        fn service_for(&self, cx: &LeafContext) -> Option<&S> {
            if self.per_replica {
                self.services.get(cx.replica)
            } else {
                self.services.first()
            }
        }
    }

    impl<S, C, M> fmt::Debug for ServiceLeaf<S, C, M> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ServiceLeaf")
                .field("services", &self.services.len())
                .field("per_replica", &self.per_replica)
                .finish_non_exhaustive()
        }
    }

    /// A `tower::Service` error, kept, with its class; `None` when the
    /// replica had no service.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ServiceError<E> {
        /// The service's error (`None`: no service for the replica).
        pub error: Option<E>,
        /// Whether it is transient.
        pub class: ErrorClass,
        replica: usize,
    }

    impl<E: fmt::Display> fmt::Display for ServiceError<E> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.error {
                Some(e) => fmt::Display::fmt(e, f),
                None => write!(f, "no service for replica {}", self.replica),
            }
        }
    }

    impl<E: std::error::Error + 'static> std::error::Error for ServiceError<E> {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.error.as_ref().map(|e| e as _)
        }
    }

    impl<E> Classify for ServiceError<E> {
        fn class(&self) -> ErrorClass {
            self.class
        }
    }

    type Call<T, E> = Pin<Box<dyn Future<Output = Result<T, ServiceError<E>>> + Send>>;

    fn call<S, C, R>(
        service: Option<&S>,
        classify: &C,
        request: R,
        replica: usize,
    ) -> Call<S::Response, S::Error>
    where
        S: Service<R> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
        S::Error: Send + 'static,
        R: Send + 'static,
        C: Fn(&S::Error) -> ErrorClass + Clone + Send + Sync + 'static,
    {
        let Some(service) = service.cloned() else {
            return Box::pin(std::future::ready(Err(ServiceError {
                error: None,
                class: ErrorClass::Permanent,
                replica,
            })));
        };
        let classify = classify.clone();
        Box::pin(async move {
            let wrap = |e: S::Error| ServiceError {
                class: classify(&e),
                error: Some(e),
                replica,
            };
            let mut ready = service.ready_oneshot().await.map_err(wrap)?;
            ready.call(request).await.map_err(wrap)
        })
    }

    /// What a [`ServiceLeaf`] sends its service: the request alone
    /// ([`Plain`]) or with the call's context ([`WithContext`]).
    pub trait Mode<Req>: sealed::Sealed {
        /// The service's request type.
        type Request: Send + 'static;
        /// The service's request for `request` at `cx`.
        fn request(request: Req, cx: LeafContext) -> Self::Request;
    }

    mod sealed {
        pub trait Sealed {}
        impl Sealed for super::Plain {}
        impl Sealed for super::WithContext {}
    }

    impl<Req: Send + 'static> Mode<Req> for Plain {
        type Request = Req;
        fn request(request: Req, _cx: LeafContext) -> Req {
            request
        }
    }

    impl<Req: Send + 'static> Mode<Req> for WithContext {
        type Request = (Req, LeafContext);
        fn request(request: Req, cx: LeafContext) -> (Req, LeafContext) {
            (request, cx)
        }
    }

    impl<S, C, M, Req> Leaf<Req> for ServiceLeaf<S, C, M>
    where
        M: Mode<Req>,
        S: Service<M::Request> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
        S::Error: fmt::Display + Send + 'static,
        C: Fn(&S::Error) -> ErrorClass + Clone + Send + Sync + 'static,
    {
        type Response = S::Response;
        type Error = ServiceError<S::Error>;
        type Future = Call<S::Response, S::Error>;

        fn call(&self, request: Req, cx: LeafContext) -> Self::Future {
            let request = M::request(request, cx);
            call(self.service_for(&cx), &self.classify, request, cx.replica)
        }
    }
}
