//! The filtered, cursor-paged call list (`Store::list_call_page`), on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::add_tenants;

use std::collections::BTreeSet;

use vaani_store::{
    CallDirection, CallFilter, CallOutcome, CallRecord, CallStatus, Cursor, NewCall, Scope, Store,
    new_id,
};

on_sqlite_and_postgres!(
    paging_walks_every_call_once_despite_ties,
    filters_combine,
    a_tenant_scope_always_holds,
    a_cursor_past_the_end_gives_an_empty_last_page,
);

/// Inserts a call and returns its id.
async fn add_call(
    store: &Store,
    tenant_id: &str,
    started_at_ms: i64,
    caller: &str,
    dialled: &str,
) -> String {
    let id = new_id();
    store
        .insert_call(&NewCall {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            external_id: None,
            direction: CallDirection::Inbound,
            caller: caller.to_owned(),
            dialled: dialled.to_owned(),
            status: CallStatus::Ringing,
            started_at_ms,
            plugin_name: None,
            plugin_version: None,
        })
        .await
        .unwrap();
    id
}

async fn complete(store: &Store, tenant_id: &str, call_id: &str) {
    store
        .finish_call(
            tenant_id,
            call_id,
            &CallOutcome {
                status: CallStatus::Completed,
                ended_at_ms: 1_000_000,
                end_reason: "caller_hangup".to_owned(),
                media_stats: None,
                error: None,
            },
        )
        .await
        .unwrap();
}

fn ids(calls: &[CallRecord]) -> Vec<String> {
    calls.iter().map(|call| call.id.clone()).collect()
}

/// Every page of `filter` for `scope`, followed through the cursors.
async fn all_pages(store: &Store, scope: &Scope, filter: &CallFilter) -> Vec<Vec<CallRecord>> {
    let mut filter = filter.clone();
    let mut pages = Vec::new();
    loop {
        let page = store.list_call_page(scope, &filter).await.unwrap();
        pages.push(page.items);
        match page.next_cursor {
            Some(cursor) => {
                // The cursor survives the trip through its string form.
                filter.cursor = Some(Cursor::decode(&cursor.encode()).unwrap());
            }
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

async fn paging_walks_every_call_once_despite_ties(store: Store) {
    add_tenants(&store).await;
    // 11 calls, most of them sharing a start time, so the id must break the ties.
    let mut expected = Vec::new();
    for (i, started) in [5, 5, 5, 7, 7, 3, 5, 9, 9, 9, 1].into_iter().enumerate() {
        let dialled = format!("+9180000000{i:02}");
        let id = add_call(&store, "a", started, "+919800000001", &dialled).await;
        expected.push((started, id));
    }
    add_call(&store, "b", 5, "+919800000001", "+918000000001").await;
    expected.sort();
    expected.reverse();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let scope = Scope::Tenant("a".into());
    for limit in [1, 2, 3, 4, 11, 12, 50] {
        let filter = CallFilter {
            limit,
            ..CallFilter::default()
        };
        let pages = all_pages(&store, &scope, &filter).await;
        for page in &pages[..pages.len() - 1] {
            assert_eq!(page.len(), limit as usize, "limit {limit}: full pages");
        }
        let walked: Vec<String> = pages.iter().flat_map(|page| ids(page)).collect();
        assert_eq!(walked, expected, "limit {limit}: every call once, in order");
        // A page that ends exactly at the last call says so: no cursor, no empty page.
        if limit == 11 {
            assert_eq!(pages.len(), 1);
        }
    }
    // The plain list is the first page.
    let first = store
        .list_calls(
            &scope,
            &CallFilter {
                limit: 4,
                ..CallFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&first), expected[..4]);
}

async fn filters_combine(store: Store) {
    add_tenants(&store).await;
    let x = "+919800000001";
    let y = "+919800000002";
    let line1 = "+918000000001";
    let line2 = "+918000000002";
    let c1 = add_call(&store, "a", 1_000, x, line1).await;
    let c2 = add_call(&store, "a", 2_000, x, line2).await;
    let c3 = add_call(&store, "a", 3_000, y, line1).await;
    let c4 = add_call(&store, "a", 4_000, x, line1).await;
    let c5 = add_call(&store, "a", 5_000, y, line2).await;
    for id in [&c1, &c3, &c4] {
        complete(&store, "a", id).await;
    }
    let list = |filter: CallFilter| {
        let store = store.clone();
        async move { ids(&store.list_calls(&Scope::Operator, &filter).await.unwrap()) }
    };
    let filter = CallFilter::default;

    // The time range is [from, to): from inclusive, to exclusive.
    assert_eq!(
        list(CallFilter {
            from_ms: Some(2_000),
            to_ms: Some(4_000),
            ..filter()
        })
        .await,
        [c3.clone(), c2.clone()]
    );
    assert_eq!(
        list(CallFilter {
            from_ms: Some(4_000),
            ..filter()
        })
        .await,
        [c5.clone(), c4.clone()]
    );
    assert_eq!(
        list(CallFilter {
            to_ms: Some(1_001),
            ..filter()
        })
        .await,
        [c1.as_str()]
    );
    assert!(
        list(CallFilter {
            from_ms: Some(3_000),
            to_ms: Some(3_000),
            ..filter()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(CallFilter {
            status: Some(CallStatus::Completed),
            ..filter()
        })
        .await,
        [c4.clone(), c3.clone(), c1.clone()]
    );
    assert_eq!(
        list(CallFilter {
            status: Some(CallStatus::Ringing),
            ..filter()
        })
        .await,
        [c5.clone(), c2.clone()]
    );
    assert!(
        list(CallFilter {
            status: Some(CallStatus::Failed),
            ..filter()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(CallFilter {
            dialled: Some(line1.to_owned()),
            ..filter()
        })
        .await,
        [c4.clone(), c3.clone(), c1.clone()]
    );
    assert_eq!(
        list(CallFilter {
            caller: Some(y.to_owned()),
            ..filter()
        })
        .await,
        [c5.clone(), c3.clone()]
    );
    // All at once: completed calls from x to line 1 from 2 s on.
    assert_eq!(
        list(CallFilter {
            caller: Some(x.to_owned()),
            dialled: Some(line1.to_owned()),
            status: Some(CallStatus::Completed),
            from_ms: Some(2_000),
            ..filter()
        })
        .await,
        [c4.as_str()]
    );
    // Filters and the cursor together: page through x's calls one by one.
    let pages = all_pages(
        &store,
        &Scope::Operator,
        &CallFilter {
            caller: Some(x.to_owned()),
            limit: 1,
            ..filter()
        },
    )
    .await;
    let walked: Vec<String> = pages.iter().flat_map(|page| ids(page)).collect();
    assert_eq!(walked, [c4, c2, c1]);
}

async fn a_tenant_scope_always_holds(store: Store) {
    add_tenants(&store).await;
    let number = "+919800000001";
    let line = "+918000000001";
    let mut a_calls = BTreeSet::new();
    let mut b_calls = BTreeSet::new();
    for started in 1..=4 {
        a_calls.insert(add_call(&store, "a", started, number, line).await);
        b_calls.insert(add_call(&store, "b", started, number, line).await);
    }
    let a = Scope::Tenant("a".into());
    let walk = |scope: Scope, filter: CallFilter| {
        let store = store.clone();
        async move {
            all_pages(&store, &scope, &filter)
                .await
                .iter()
                .flat_map(|page| ids(page))
                .collect::<BTreeSet<String>>()
        }
    };
    let same_number = CallFilter {
        caller: Some(number.to_owned()),
        dialled: Some(line.to_owned()),
        limit: 3,
        ..CallFilter::default()
    };
    assert_eq!(walk(a.clone(), same_number.clone()).await, a_calls);
    // Naming the other tenant gives a tenant nothing, not the other tenant's calls.
    let ask_for_b = CallFilter {
        tenant: Some("b".into()),
        ..same_number.clone()
    };
    assert!(walk(a.clone(), ask_for_b.clone()).await.is_empty());
    // A cursor taken from the operator's list of everything does not widen a tenant's view.
    let everything = store
        .list_call_page(
            &Scope::Operator,
            &CallFilter {
                limit: 1,
                ..CallFilter::default()
            },
        )
        .await
        .unwrap();
    let from_operator = CallFilter {
        cursor: everything.next_cursor,
        ..same_number.clone()
    };
    let seen = walk(a.clone(), from_operator).await;
    assert!(!seen.is_empty() && seen.is_subset(&a_calls), "{seen:?}");
    // The operator sees both tenants, and can narrow to one.
    let both: BTreeSet<String> = a_calls.union(&b_calls).cloned().collect();
    assert_eq!(walk(Scope::Operator, same_number).await, both);
    assert_eq!(walk(Scope::Operator, ask_for_b).await, b_calls);
}

async fn a_cursor_past_the_end_gives_an_empty_last_page(store: Store) {
    add_tenants(&store).await;
    add_call(&store, "a", 10, "+919800000001", "+918000000001").await;
    let page = store
        .list_call_page(
            &Scope::Operator,
            &CallFilter {
                cursor: Some(Cursor {
                    at_ms: 10,
                    id: "0".to_owned(),
                }),
                ..CallFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next_cursor, None);
}
