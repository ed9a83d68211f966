//! Property tests for the provided combiners: any split of the inputs into
//! parts, merged in any tree order, extracts the same output as one
//! sequential fold, and that output equals a naive oracle.

use proptest::prelude::*;
use weft_core::{Combine, Count, CountBy, Flatten, Histogram, Max, MergeBy, Min, Score, Sum, TopK};

/// A small deterministic generator so a proptest seed picks the tree shape.
struct Mix(u64);

impl Mix {
    fn below(&mut self, n: usize) -> usize {
        // SplitMix64 step.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// Splits `inputs` into random contiguous-or-shuffled parts, folds each, and
/// merges the accumulators pairwise in a random order until one is left.
fn tree_fold<C: Combine>(c: &C, mut inputs: Vec<C::Input>, seed: u64) -> C::Acc {
    let mut mix = Mix(seed);
    // Shuffle so parts are not only contiguous runs.
    for i in (1..inputs.len()).rev() {
        let j = mix.below(i + 1);
        inputs.swap(i, j);
    }
    let mut parts: Vec<C::Acc> = Vec::new();
    let mut rest = inputs.into_iter().peekable();
    while rest.peek().is_some() {
        let take = 1 + mix.below(4);
        parts.push(c.fold(rest.by_ref().take(take)));
    }
    // Empty accumulators are merge identities: sprinkle a few in.
    for _ in 0..mix.below(3) {
        parts.push(c.create());
    }
    while parts.len() > 1 {
        let i = mix.below(parts.len());
        let other = parts.swap_remove(i);
        let j = mix.below(parts.len());
        c.merge(&mut parts[j], other);
    }
    parts.pop().unwrap_or_else(|| c.create())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn count_is_independent_of_split_and_order(xs in prop::collection::vec(any::<u8>(), 0..200), seed: u64) {
        let c = Count::new();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        prop_assert_eq!(tree, c.extract(c.fold(xs.clone())));
        prop_assert_eq!(tree, xs.len() as u64);
    }

    #[test]
    fn integer_sum_is_exact_and_independent_of_split_and_order(xs in prop::collection::vec(any::<i64>(), 0..100), seed: u64) {
        let c = Sum::<i64>::new();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        prop_assert_eq!(&tree, &c.extract(c.fold(xs.clone())));
        let exact: i128 = xs.iter().map(|&x| i128::from(x)).sum();
        match i64::try_from(exact) {
            Ok(v) => prop_assert_eq!(tree, Ok(v)),
            Err(_) => prop_assert!(tree.is_err(), "overflow of {} not reported", exact),
        }
    }

    #[test]
    fn small_integer_sum_reports_overflow_whatever_the_order(xs in prop::collection::vec(any::<u8>(), 0..20), seed: u64) {
        let c = Sum::<u8>::new();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        let exact: u64 = xs.iter().map(|&x| u64::from(x)).sum();
        prop_assert_eq!(tree.ok(), u8::try_from(exact).ok());
    }

    #[test]
    fn float_sum_is_correctly_rounded_whatever_the_order(ns in prop::collection::vec(-(1i64 << 52)..(1i64 << 52), 0..100), seed: u64) {
        // Inputs are n · 2^-20 with |n| < 2^52, so every input is exact and
        // the exact sum is Σn · 2^-20: the oracle rounds that once.
        let scale = 2f64.powi(-20);
        let xs: Vec<f64> = ns.iter().map(|&n| n as f64 * scale).collect();
        let c = Sum::<f64>::new();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        let oracle = ns.iter().map(|&n| i128::from(n)).sum::<i128>() as f64 * scale;
        prop_assert_eq!(tree, c.extract(c.fold(xs.clone())));
        prop_assert_eq!(tree, oracle);
    }

    #[test]
    fn float_sum_over_wide_magnitudes_is_independent_of_order(
        xs in prop::collection::vec(prop_oneof![-1e300..1e300f64, -1.0..1.0f64, -1e-300..1e-300f64], 0..60),
        seed: u64,
    ) {
        let c = Sum::<f64>::new();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        prop_assert_eq!(tree, c.extract(c.fold(xs.clone())));
    }

    #[test]
    fn histogram_matches_a_naive_count_whatever_the_order(
        xs in prop::collection::vec(prop_oneof![-50.0..150.0f64, Just(f64::NAN), Just(f64::INFINITY), Just(10.0)], 0..200),
        seed: u64,
    ) {
        let bounds = [0.0, 10.0, 25.0, 50.0, 100.0];
        let c = Histogram::new(bounds).unwrap();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed)).unwrap();
        prop_assert_eq!(&tree, &c.extract(c.fold(xs.clone())).unwrap());
        let mut naive = [0u64; 6];
        for x in xs.iter().filter(|x| !x.is_nan()) {
            naive[bounds.iter().filter(|&&b| b <= *x).count()] += 1;
        }
        prop_assert_eq!(tree.counts(), &naive[..]);
        prop_assert_eq!(tree.nan_count(), xs.iter().filter(|x| x.is_nan()).count() as u64);
        let finite_min = xs.iter().copied().filter(|x| !x.is_nan()).reduce(f64::min);
        prop_assert_eq!(tree.min(), finite_min);
    }

    #[test]
    fn top_k_matches_sort_and_take_whatever_the_order(
        xs in prop::collection::vec((0u8..8, any::<u16>()), 0..100),
        k in 1usize..10,
        seed: u64,
    ) {
        let c = TopK::by_key(k, |x: &(u8, u16)| x.0).unwrap();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        prop_assert_eq!(&tree, &c.extract(c.fold(xs.clone())));
        let mut naive = xs.clone();
        naive.sort_by(|a, b| b.cmp(a));
        naive.truncate(k);
        prop_assert_eq!(tree, naive);
    }

    #[test]
    fn min_and_max_match_the_iterator_whatever_the_order(xs in prop::collection::vec(any::<i32>(), 0..100), seed: u64) {
        let (min, max) = (Min::new(), Max::new());
        prop_assert_eq!(min.extract(tree_fold(&min, xs.clone(), seed)), xs.iter().copied().min());
        prop_assert_eq!(max.extract(tree_fold(&max, xs.clone(), seed)), xs.iter().copied().max());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn count_by_key_is_independent_of_split_and_order(xs in prop::collection::vec(0u8..8, 0..200), seed: u64) {
        let c = CountBy::new();
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        prop_assert_eq!(&tree, &c.extract(c.fold(xs.clone())));
        let mut oracle = std::collections::BTreeMap::new();
        for x in xs {
            *oracle.entry(x).or_insert(0u64) += 1;
        }
        prop_assert_eq!(tree, oracle);
    }

    #[test]
    fn merge_by_key_combines_each_key_alike_whatever_the_order(
        xs in prop::collection::vec((0u8..6, any::<u32>()), 0..150), seed: u64,
    ) {
        let c = MergeBy::new(Max::<u32>::new());
        let tree = c.extract(tree_fold(&c, xs.clone(), seed));
        prop_assert_eq!(&tree, &c.extract(c.fold(xs.clone())));
        let mut oracle = std::collections::BTreeMap::new();
        for (k, v) in xs {
            let e = oracle.entry(k).or_insert(v);
            *e = (*e).max(v);
        }
        let got: std::collections::BTreeMap<u8, u32> =
            tree.into_iter().map(|(k, v)| (k, v.expect("every key has a value"))).collect();
        prop_assert_eq!(got, oracle);
    }

    #[test]
    fn top_k_by_float_score_over_flattened_lists_is_independent_of_split_and_order(
        lists in prop::collection::vec(prop::collection::vec((-1e6f64..1e6, 0u16..50), 0..8), 0..30),
        k in 1usize..10,
        seed: u64,
    ) {
        let lists: Vec<Vec<(Score, u16)>> = lists
            .into_iter()
            .map(|l| l.into_iter().map(|(s, d)| (Score::new(s).unwrap(), d)).collect())
            .collect();
        let c = Flatten::new(TopK::by_key(k, |hit: &(Score, u16)| hit.0).unwrap());
        let tree = c.extract(tree_fold(&c, lists.clone(), seed));
        prop_assert_eq!(&tree, &c.extract(c.fold(lists.clone())));
        let mut all: Vec<(Score, u16)> = lists.into_iter().flatten().collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(k);
        prop_assert_eq!(tree, all);
    }
}

#[test]
fn scores_order_totally_and_refuse_nan() {
    assert!(Score(-0.0) < Score(0.0));
    assert!(Score(f64::NEG_INFINITY) < Score(-1e300));
    assert!(Score(f64::INFINITY) < Score(f64::NAN));
    assert!(Score::new(f64::NAN).is_err());
    assert_eq!(Score::new(1.5).unwrap(), Score(1.5));
    assert_eq!(serde_json::to_string(&Score(0.25)).unwrap(), "0.25");
}
