//! Items moving between stages: a batch a stage owns, or one it shares
//! with the other outputs of a copier.

use std::sync::Arc;

/// A batch of items in a flow.
pub(crate) enum Batch<T> {
    /// One item, sent alone and alone when read: no allocation.
    One(T),
    /// Items this stage owns.
    Owned(Vec<T>),
    /// Items other outputs of a copier hold too: read in place, and
    /// copied only by a stage that must own them while another output
    /// still holds them.
    Shared(Arc<dyn Shared<T>>),
}

impl<T> Batch<T> {
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Batch::One(item) => std::slice::from_ref(item),
            Batch::Owned(items) => items,
            Batch::Shared(shared) => shared.items(),
        }
    }

    /// The items, owned: a shared batch is taken whole if no other output
    /// holds it any more, else copied.
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            Batch::One(item) => vec![item],
            Batch::Owned(items) => items,
            Batch::Shared(shared) => shared.take(),
        }
    }
}

impl<T> Batch<T> {
    /// The items in vectors of at most `size` (at least one item each), in
    /// order: a batch too large for an edge, in parts it takes one by one.
    pub(crate) fn parts(self, size: usize) -> impl Iterator<Item = Vec<T>> {
        let size = size.max(1);
        let mut items = self.into_vec().into_iter();
        std::iter::from_fn(move || {
            let part: Vec<T> = items.by_ref().take(size).collect();
            (!part.is_empty()).then_some(part)
        })
    }
}

impl<T: Clone + Send + Sync + 'static> Batch<T> {
    /// The batch as one several outputs can hold.
    pub(crate) fn into_shared(self) -> Arc<dyn Shared<T>> {
        match self {
            Batch::One(item) => Arc::new(vec![item]),
            Batch::Owned(items) => Arc::new(items),
            Batch::Shared(shared) => shared,
        }
    }
}

impl<T> From<Vec<T>> for Batch<T> {
    fn from(items: Vec<T>) -> Self {
        Batch::Owned(items)
    }
}

impl<T> FromIterator<T> for Batch<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        Batch::Owned(items.into_iter().collect())
    }
}

impl<T> Batch<T> {
    /// The batch with `f` applied to each item: one stays one, and a
    /// vector is mapped in place where the item types allow.
    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Batch<U> {
        let mut f = f;
        match self {
            Batch::One(item) => Batch::One(f(item)),
            batch => Batch::Owned(batch.into_vec().into_iter().map(f).collect()),
        }
    }
}

impl<T> Batch<T> {
    /// Moves the items to the end of `out` (a copy of the vector's memory,
    /// not an item-by-item push).
    pub(crate) fn append_to(self, out: &mut Vec<T>) {
        match self {
            Batch::One(item) => out.push(item),
            batch => {
                let mut items = batch.into_vec();
                if out.is_empty() {
                    std::mem::swap(out, &mut items);
                } else {
                    out.append(&mut items);
                }
            }
        }
    }
}

impl<T> IntoIterator for Batch<T> {
    type Item = T;
    type IntoIter = BatchIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        match self {
            Batch::One(item) => BatchIter::One(Some(item)),
            batch => BatchIter::Many(batch.into_vec().into_iter()),
        }
    }
}

/// The items of a batch, by value.
pub(crate) enum BatchIter<T> {
    One(Option<T>),
    Many(std::vec::IntoIter<T>),
}

impl<T> Iterator for BatchIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            BatchIter::One(item) => item.take(),
            BatchIter::Many(items) => items.next(),
        }
    }

    /// One dispatch per batch, not per item, so that the loop over a
    /// batch's items is the vector's own (`for_each` and the adapters
    /// that fold go through here).
    fn fold<B, F>(self, init: B, f: F) -> B
    where
        F: FnMut(B, T) -> B,
    {
        match self {
            BatchIter::One(item) => item.into_iter().fold(init, f),
            BatchIter::Many(items) => items.fold(init, f),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            BatchIter::One(item) => (
                usize::from(item.is_some()),
                Some(usize::from(item.is_some())),
            ),
            BatchIter::Many(items) => items.size_hint(),
        }
    }
}

impl<T> std::fmt::Debug for Batch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self {
            Batch::One(_) => "one",
            Batch::Owned(_) => "owned",
            Batch::Shared(_) => "shared",
        };
        write!(f, "Batch({} items, {how})", self.len())
    }
}

/// A batch that several outputs hold (a copier's), read in place by each;
/// another hold is a clone of the `Arc`.
pub(crate) trait Shared<T>: Send + Sync {
    /// The items, to read in place.
    fn items(&self) -> &[T];
    /// The items, owned: the batch itself if no other output still holds
    /// it, else a copy.
    fn take(self: Arc<Self>) -> Vec<T>;
}

/// Items that can be cloned and read from several threads.
impl<T: Clone + Send + Sync + 'static> Shared<T> for Vec<T> {
    fn items(&self) -> &[T] {
        self
    }

    fn take(self: Arc<Self>) -> Vec<T> {
        Arc::unwrap_or_clone(self)
    }
}
