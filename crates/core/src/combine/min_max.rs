use std::fmt;
use std::marker::PhantomData;

use super::Combine;

macro_rules! extreme {
    ($(#[$doc:meta])* $name:ident, $keep_new:expr) => {
        $(#[$doc])*
        pub struct $name<T>(PhantomData<fn(T) -> T>);

        impl<T> $name<T> {
            /// The combiner.
            pub fn new() -> Self {
                $name(PhantomData)
            }
        }

        impl<T> Default for $name<T> {
            fn default() -> Self {
                $name::new()
            }
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name::new()
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl<T: Ord> Combine for $name<T> {
            type Input = T;
            type Acc = Option<T>;
            type Output = Option<T>;

            fn create(&self) -> Option<T> {
                None
            }
            fn add(&self, acc: &mut Option<T>, input: T) {
                let keep_new: fn(&T, &T) -> bool = $keep_new;
                match acc {
                    Some(current) if !keep_new(&input, current) => {}
                    _ => *acc = Some(input),
                }
            }
            fn merge(&self, acc: &mut Option<T>, other: Option<T>) {
                if let Some(other) = other {
                    self.add(acc, other);
                }
            }
            fn extract(&self, acc: Option<T>) -> Option<T> {
                acc
            }
        }
    };
}

extreme!(
    /// The smallest input (`None` when there is none).
    ///
    /// # Examples
    ///
    /// ```
    /// use weft_core::{Combine, Min};
    ///
    /// let min = Min::new();
    /// assert_eq!(min.extract(min.fold([3, 1, 2])), Some(1));
    /// ```
    Min,
    |new, current| new < current
);

extreme!(
    /// The largest input (`None` when there is none).
    ///
    /// # Examples
    ///
    /// ```
    /// use weft_core::{Combine, Max};
    ///
    /// let max = Max::new();
    /// assert_eq!(max.extract(max.fold([3, 1, 2])), Some(3));
    /// ```
    Max,
    |new, current| new > current
);
