//! Tenants managed over the API, their API keys and their phone numbers, on SQLite and
//! PostgreSQL, including what one tenant must not be able to do to another.

#[macro_use]
mod common;

use serde_json::json;
use vaani_store::{
    NewCall, NewTenant, Scope, Store, StoreError, Tenant, TenantStatus, TenantUpdate, Trunk,
};

on_sqlite_and_postgres!(
    create_get_list_tenants_with_settings,
    creating_a_taken_tenant_id_is_a_conflict,
    update_tenant_changes_only_what_is_given,
    updating_or_deleting_a_missing_tenant_is_not_found,
    deleting_a_tenant_removes_what_it_owns,
    the_seed_keeps_status_and_settings_of_an_existing_tenant,
    an_api_key_authenticates_its_tenant_until_revoked,
    keys_are_stored_hashed_and_shown_once,
    keys_of_a_suspended_tenant_still_authenticate,
    last_used_is_recorded,
    a_tenant_cannot_see_or_revoke_another_tenants_keys,
    creating_a_key_for_a_missing_tenant_is_not_found,
    numbers_are_assigned_listed_and_released,
    a_tenant_cannot_take_release_or_see_another_tenants_number,
);

fn new_tenant(id: &str) -> NewTenant {
    NewTenant {
        id: id.to_owned(),
        name: format!("Tenant {id}"),
        settings: None,
    }
}

/// Creates tenants `a` and `b` through the API path.
async fn two_tenants(store: &Store) {
    store.create_tenant(&new_tenant("a")).await.unwrap();
    store.create_tenant(&new_tenant("b")).await.unwrap();
}

fn scope(tenant: &str) -> Scope {
    Scope::Tenant(tenant.to_owned())
}

async fn create_get_list_tenants_with_settings(store: Store) {
    let settings = json!({ "fallback_text": "Please call later.", "limits": { "calls": 3 } });
    let before = vaani_store::now_ms();
    let created = store
        .create_tenant(&NewTenant {
            settings: Some(settings.clone()),
            ..new_tenant("clinic")
        })
        .await
        .unwrap();
    assert_eq!(created.tenant.id, "clinic");
    assert_eq!(created.tenant.name, "Tenant clinic");
    assert_eq!(created.tenant.status, TenantStatus::Active);
    assert!(created.tenant.created_at_ms >= before);
    assert_eq!(created.settings, Some(settings));

    store.create_tenant(&new_tenant("echo")).await.unwrap();
    let fetched = store.get_tenant_with_settings("clinic").await.unwrap();
    assert_eq!(fetched, Some(created.clone()));
    let echo = store
        .get_tenant_with_settings("echo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo.settings, None);
    assert_eq!(store.get_tenant_with_settings("nope").await.unwrap(), None);
    assert_eq!(
        store.get_tenant("clinic").await.unwrap(),
        Some(created.tenant.clone())
    );
    let ids: Vec<String> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["clinic", "echo"]);
    // The server's routing reads every tenant with its settings.
    let all = store.list_tenants_with_settings().await.unwrap();
    assert_eq!(all, [created, echo]);
}

async fn creating_a_taken_tenant_id_is_a_conflict(store: Store) {
    store.create_tenant(&new_tenant("a")).await.unwrap();
    let err = store
        .create_tenant(&NewTenant {
            name: "Impostor".to_owned(),
            ..new_tenant("a")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { what: "tenant", id } if id == "a"),
        "{err}"
    );
    // The existing tenant is untouched.
    assert_eq!(
        store.get_tenant("a").await.unwrap().unwrap().name,
        "Tenant a"
    );
}

async fn update_tenant_changes_only_what_is_given(store: Store) {
    let settings = json!({ "greeting": "Namaste" });
    let created = store
        .create_tenant(&NewTenant {
            settings: Some(settings.clone()),
            ..new_tenant("a")
        })
        .await
        .unwrap();

    let renamed = store
        .update_tenant(
            "a",
            &TenantUpdate {
                name: Some("Renamed".to_owned()),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.tenant.name, "Renamed");
    assert_eq!(renamed.tenant.status, TenantStatus::Active);
    assert_eq!(renamed.tenant.created_at_ms, created.tenant.created_at_ms);
    assert_eq!(renamed.settings, Some(settings.clone()));

    let suspended = store
        .update_tenant(
            "a",
            &TenantUpdate {
                status: Some(TenantStatus::Suspended),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(suspended.tenant.name, "Renamed");
    assert_eq!(suspended.tenant.status, TenantStatus::Suspended);
    assert_eq!(suspended.settings, Some(settings));

    let other = json!({ "greeting": "Vanakkam" });
    let replaced = store
        .update_tenant(
            "a",
            &TenantUpdate {
                settings: Some(Some(other.clone())),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.settings, Some(other));
    assert_eq!(replaced.tenant.status, TenantStatus::Suspended);

    let cleared = store
        .update_tenant(
            "a",
            &TenantUpdate {
                settings: Some(None),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.settings, None);
    assert_eq!(
        store.get_tenant_with_settings("a").await.unwrap(),
        Some(cleared)
    );
}

async fn updating_or_deleting_a_missing_tenant_is_not_found(store: Store) {
    let err = store
        .update_tenant("ghost", &TenantUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "tenant", .. }),
        "{err}"
    );
    let err = store.delete_tenant("ghost").await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "tenant", .. }),
        "{err}"
    );
}

async fn deleting_a_tenant_removes_what_it_owns(store: Store) {
    two_tenants(&store).await;
    let (_, key_a) = store.create_api_key("a", "ci").await.unwrap();
    let (_, key_b) = store.create_api_key("b", "ci").await.unwrap();
    store
        .assign_phone_number("a", "+918000000001", None)
        .await
        .unwrap();
    store
        .assign_phone_number("b", "+918000000002", None)
        .await
        .unwrap();
    let call_id = vaani_store::new_id();
    store
        .insert_call(&NewCall {
            id: call_id.clone(),
            tenant_id: "a".to_owned(),
            external_id: None,
            direction: vaani_store::CallDirection::Inbound,
            caller: "+919800000001".to_owned(),
            dialled: "+918000000001".to_owned(),
            status: vaani_store::CallStatus::Ringing,
            started_at_ms: 1_000,
            plugin_name: None,
            plugin_version: None,
        })
        .await
        .unwrap();
    store.kv_set("a", "k", b"v").await.unwrap();

    store.delete_tenant("a").await.unwrap();

    assert_eq!(store.get_tenant("a").await.unwrap(), None);
    assert_eq!(store.tenant_for_api_key(&key_a).await.unwrap(), None);
    assert_eq!(
        store.tenant_for_number("+918000000001").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_call(&Scope::Operator, &call_id).await.unwrap(),
        None
    );
    assert_eq!(store.kv_get("a", "k").await.unwrap(), None);
    // Tenant b is untouched.
    assert_eq!(
        store.tenant_for_api_key(&key_b).await.unwrap(),
        Some("b".to_owned())
    );
    assert_eq!(
        store.tenant_for_number("+918000000002").await.unwrap(),
        Some("b".to_owned())
    );
    // The freed id and number can be used again.
    store.create_tenant(&new_tenant("a")).await.unwrap();
    store
        .assign_phone_number("b", "+918000000001", None)
        .await
        .unwrap();
}

async fn the_seed_keeps_status_and_settings_of_an_existing_tenant(store: Store) {
    let settings = json!({ "greeting": "Namaste" });
    store
        .create_tenant(&NewTenant {
            settings: Some(settings.clone()),
            ..new_tenant("a")
        })
        .await
        .unwrap();
    store
        .update_tenant(
            "a",
            &TenantUpdate {
                status: Some(TenantStatus::Suspended),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();

    // A restart seeds the tenant from the config file again.
    store
        .upsert_tenant(&Tenant {
            id: "a".to_owned(),
            name: "From config".to_owned(),
            status: TenantStatus::Active,
            created_at_ms: 5,
        })
        .await
        .unwrap();
    let seeded = store.get_tenant_with_settings("a").await.unwrap().unwrap();
    assert_eq!(seeded.tenant.name, "From config");
    assert_eq!(seeded.tenant.status, TenantStatus::Suspended);
    assert_eq!(seeded.settings, Some(settings));
    assert_ne!(seeded.tenant.created_at_ms, 5);
}

async fn an_api_key_authenticates_its_tenant_until_revoked(store: Store) {
    two_tenants(&store).await;
    let (listed, key) = store.create_api_key("a", "crm export").await.unwrap();
    assert_eq!(listed.tenant_id, "a");
    assert_eq!(listed.name, "crm export");
    assert!(key.starts_with(&format!("{}_", listed.prefix)), "{key}");
    assert!(listed.prefix.starts_with(vaani_store::API_KEY_PREFIX));
    assert_eq!(listed.revoked_at_ms, None);

    assert_eq!(
        store.tenant_for_api_key(&key).await.unwrap(),
        Some("a".to_owned())
    );
    // Anything else is not a key: a near miss, the prefix alone, garbage.
    let mut near_miss = key.clone();
    let last = near_miss.pop().unwrap();
    near_miss.push(if last == 'a' { 'b' } else { 'a' });
    for other in [
        near_miss.as_str(),
        listed.prefix.as_str(),
        "",
        "operator-key",
    ] {
        assert_eq!(
            store.tenant_for_api_key(other).await.unwrap(),
            None,
            "{other}"
        );
    }

    let revoked = store.revoke_api_key(&scope("a"), &listed.id).await.unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    assert_eq!(store.tenant_for_api_key(&key).await.unwrap(), None);
    // Revoking again keeps the first revocation time.
    let again = store.revoke_api_key(&scope("a"), &listed.id).await.unwrap();
    assert_eq!(again.revoked_at_ms, revoked.revoked_at_ms);

    // The operator may revoke any tenant's key.
    let (listed_b, key_b) = store.create_api_key("b", "ops").await.unwrap();
    store
        .revoke_api_key(&Scope::Operator, &listed_b.id)
        .await
        .unwrap();
    assert_eq!(store.tenant_for_api_key(&key_b).await.unwrap(), None);
    let err = store
        .revoke_api_key(&Scope::Operator, "no-such-key")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

async fn keys_are_stored_hashed_and_shown_once(store: Store) {
    two_tenants(&store).await;
    let (first, key) = store.create_api_key("a", "one").await.unwrap();
    let (second, other) = store.create_api_key("a", "two").await.unwrap();
    assert_ne!(key, other);
    assert_ne!(first.id, second.id);
    // Listings show the prefix, never the key: the serialized list does not contain it.
    let listed = store.list_api_keys(&scope("a"), None).await.unwrap();
    assert_eq!(listed, [first, second]);
    let shown = serde_json::to_string(&listed).unwrap();
    assert!(!shown.contains(&key) && !shown.contains(&other), "{shown}");
    assert!(!shown.contains(&key[key.len() - 40..]), "{shown}");
}

async fn keys_of_a_suspended_tenant_still_authenticate(store: Store) {
    two_tenants(&store).await;
    let (_, key) = store.create_api_key("a", "ci").await.unwrap();
    store
        .update_tenant(
            "a",
            &TenantUpdate {
                status: Some(TenantStatus::Suspended),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.tenant_for_api_key(&key).await.unwrap(),
        Some("a".to_owned())
    );
}

async fn last_used_is_recorded(store: Store) {
    two_tenants(&store).await;
    let (listed, key) = store.create_api_key("a", "ci").await.unwrap();
    assert_eq!(listed.last_used_at_ms, None);
    let before = vaani_store::now_ms();
    store.tenant_for_api_key(&key).await.unwrap();
    let used = store.list_api_keys(&scope("a"), None).await.unwrap();
    let first_use = used[0].last_used_at_ms.expect("last_used_at set");
    assert!(first_use >= before);
    // Within the minute, another use does not write again.
    store.tenant_for_api_key(&key).await.unwrap();
    let used = store.list_api_keys(&scope("a"), None).await.unwrap();
    assert_eq!(used[0].last_used_at_ms, Some(first_use));
}

async fn a_tenant_cannot_see_or_revoke_another_tenants_keys(store: Store) {
    two_tenants(&store).await;
    let (key_a, plain_a) = store.create_api_key("a", "a's key").await.unwrap();
    let (key_b, _) = store.create_api_key("b", "b's key").await.unwrap();

    assert_eq!(
        store.list_api_keys(&scope("a"), None).await.unwrap(),
        std::slice::from_ref(&key_a)
    );
    // Asking for b's keys with a's scope yields nothing.
    assert!(
        store
            .list_api_keys(&scope("a"), Some("b"))
            .await
            .unwrap()
            .is_empty()
    );
    // The operator sees both, and can narrow to one tenant.
    let all = store.list_api_keys(&Scope::Operator, None).await.unwrap();
    assert_eq!(all, [key_a.clone(), key_b.clone()]);
    assert_eq!(
        store
            .list_api_keys(&Scope::Operator, Some("b"))
            .await
            .unwrap(),
        [key_b]
    );

    // b cannot revoke a's key: NotFound, and the key still works.
    let err = store
        .revoke_api_key(&scope("b"), &key_a.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(
        store.tenant_for_api_key(&plain_a).await.unwrap(),
        Some("a".to_owned())
    );
}

async fn creating_a_key_for_a_missing_tenant_is_not_found(store: Store) {
    let err = store.create_api_key("ghost", "ci").await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "tenant", .. }),
        "{err}"
    );
}

async fn numbers_are_assigned_listed_and_released(store: Store) {
    two_tenants(&store).await;
    store
        .upsert_trunk(&Trunk {
            id: "local".to_owned(),
            name: "Loopback".to_owned(),
            allowed_cidrs: vec![],
        })
        .await
        .unwrap();
    let first = store
        .assign_phone_number("a", "+918000000002", None)
        .await
        .unwrap();
    assert_eq!(first.tenant_id, "a");
    assert_eq!(first.trunk_id, None);
    store
        .assign_phone_number("a", "+918000000001", None)
        .await
        .unwrap();
    // Assigning it again is idempotent and may set the trunk.
    let again = store
        .assign_phone_number("a", "+918000000002", Some("local"))
        .await
        .unwrap();
    assert_eq!(again.trunk_id.as_deref(), Some("local"));

    let listed = store.list_phone_numbers(&scope("a"), None).await.unwrap();
    let numbers: Vec<&str> = listed.iter().map(|n| n.number.as_str()).collect();
    assert_eq!(numbers, ["+918000000001", "+918000000002"]);
    assert_eq!(listed[1], again);

    store
        .release_phone_number(&scope("a"), "+918000000001")
        .await
        .unwrap();
    assert_eq!(
        store.tenant_for_number("+918000000001").await.unwrap(),
        None
    );
    let err = store
        .release_phone_number(&scope("a"), "+918000000001")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // Once released, another tenant may take it.
    store
        .assign_phone_number("b", "+918000000001", None)
        .await
        .unwrap();
    // The operator may release any tenant's number.
    store
        .release_phone_number(&Scope::Operator, "+918000000001")
        .await
        .unwrap();
    assert!(
        store
            .list_phone_numbers(&scope("b"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_tenant_cannot_take_release_or_see_another_tenants_number(store: Store) {
    two_tenants(&store).await;
    store
        .assign_phone_number("a", "+918000000001", None)
        .await
        .unwrap();

    // b cannot take it over …
    let err = store
        .assign_phone_number("b", "+918000000001", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Conflict {
                what: "phone number",
                ..
            }
        ),
        "{err}"
    );
    // … nor release it …
    let err = store
        .release_phone_number(&scope("b"), "+918000000001")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(
        store.tenant_for_number("+918000000001").await.unwrap(),
        Some("a".to_owned())
    );
    // … nor list it.
    assert!(
        store
            .list_phone_numbers(&scope("b"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_phone_numbers(&scope("b"), Some("a"))
            .await
            .unwrap()
            .is_empty()
    );
    let all = store
        .list_phone_numbers(&Scope::Operator, Some("a"))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].tenant_id, "a");
}
