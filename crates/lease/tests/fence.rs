//! The store-backed fence: processes racing with tokens never let a lower
//! token's write land after a higher one's, over a store with delays.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use weft_lease::{CasFence, Fence, LeaseError, MemoryStore, Version};
use weft_test::faults::{FaultPlan, FaultyStore};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_highest_token_always_wins_and_no_lower_write_lands_after_it(
        seed: u64,
        tokens in proptest::collection::vec(1u64..50, 2..12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let store = Arc::new(MemoryStore::new());
            let mut tasks = Vec::new();
            for (i, &t) in tokens.iter().enumerate() {
                // Each writer is a process of its own with its own delays.
                let process = Arc::new(FaultyStore::new(
                    store.clone(),
                    FaultPlan { max_delay: Duration::from_millis(20), seed: seed ^ i as u64, ..FaultPlan::default() },
                ));
                let fence = CasFence::new(process, "f/", Duration::from_secs(3600));
                tasks.push(tokio::spawn(async move {
                    let r = fence.write("res", Version(t), t.to_be_bytes().to_vec()).await;
                    (t, r)
                }));
            }
            let mut accepted = Vec::new();
            for task in tasks {
                let (t, r) = task.await.unwrap();
                match r {
                    Ok(()) => accepted.push(t),
                    Err(LeaseError::StaleToken { token, highest, .. }) => {
                        prop_assert_eq!(token, Version(t));
                        prop_assert!(highest > token);
                    }
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            let max = *tokens.iter().max().unwrap();
            prop_assert!(accepted.contains(&max), "the highest token is never refused");
            let fence = CasFence::new(store, "f/", Duration::from_secs(3600));
            let (high, value) = fence.read("res").await.unwrap().unwrap();
            // The record holds the highest token and that writer's value: no
            // lower write landed after it.
            prop_assert_eq!(high, Version(max));
            prop_assert_eq!(value, max.to_be_bytes().to_vec());
            prop_assert!(fence.check_and_advance("res", Version(max - 1)).await.is_err() || max == 1);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_fence_record_that_is_not_a_fence_s_is_an_error_naming_it() {
    let store = Arc::new(MemoryStore::new());
    weft_lease::CasStore::create(
        store.as_ref(),
        "f/odd",
        b"xy".to_vec(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let fence = CasFence::new(store, "f/", Duration::from_secs(60));
    let err = fence
        .check_and_advance("odd", Version(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LeaseError::Invalid {
                setting: "fence record",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_token_travels_as_a_json_number_and_a_header_value() {
    let token = Version(42);
    assert_eq!(serde_json::to_string(&token).unwrap(), "42");
    assert_eq!(serde_json::from_str::<Version>("42").unwrap(), token);
    assert!(serde_json::from_str::<Version>("\"42\"").is_err());
    assert_eq!(Version::HEADER, "weft-fencing-token");
    assert_eq!(token.0.to_string().parse::<Version>(), Ok(token));
    assert_eq!(" v42 ".parse::<Version>(), Ok(token));
    let bad = "forty-two".parse::<Version>().unwrap_err();
    assert!(bad.to_string().contains("\"forty-two\""), "{bad}");
    assert!(u128::MAX.to_string().parse::<Version>().is_err());
}
