//! The API isolation matrix, against the real binary: two tenants created over the API with
//! the operator key, one API key each, and for every endpoint that names a resource, one
//! tenant's key on the other tenant's resource must answer as if it did not exist (`404`),
//! change nothing, and lists must never show the other tenant's rows.
//!
//! Plugins (uploaded and activated), webhook endpoints and their delivery logs, audio assets
//! and knowledge items are in the matrix too. To extend it (callers, …): give [`Owned`] the new resource's
//! id, create it in [`create_tenant_with_resources`], add rows to [`foreign_requests`] (reads,
//! changes and deletes of another tenant's resource) and to [`lists`], and check in
//! [`assert_resources_intact`] that the refused requests left it alone.
//!
//! Each tenant's call and recording are written straight into the server's database (a
//! recording needs a recorded call; testbench/tests/tenant_on_postgres.rs makes real calls to
//! an API tenant); everything else goes through the API.

use serde_json::{Value, json};
use vaani_store::{CallDirection, CallStatus, NewCall, Recording, Store};
use vaani_testbench::{OPERATOR_KEY, ServerSpec, VaaniServer};

/// What one tenant owns, as the matrix refers to it.
#[derive(Debug, Clone)]
struct Owned {
    tenant: String,
    /// The tenant's API key (the secret).
    key: String,
    /// The id of a second key of the tenant (the one the other tenant tries to revoke).
    spare_key_id: String,
    number: String,
    call_id: String,
    /// A plugin version the tenant uploaded (and activated).
    plugin_id: String,
    /// A webhook endpoint of the tenant (with a delivery pending for its call).
    webhook_id: String,
    /// The name of an audio asset of the tenant.
    asset: String,
    /// A knowledge item of the tenant.
    knowledge_id: String,
}

/// One request a tenant's key makes against the *other* tenant's resource, and the answer
/// it must get.
struct ForeignRequest {
    method: &'static str,
    path: fn(&Owned) -> String,
    body: fn(&Owned) -> Option<Value>,
    status: u16,
    code: &'static str,
}

/// Reads, changes and deletes of another tenant's resources. All `404` except claiming
/// another tenant's number, which is `409 number_unavailable` by design (a number is public;
/// see the OpenAPI document).
fn foreign_requests() -> Vec<ForeignRequest> {
    fn none(_: &Owned) -> Option<Value> {
        None
    }
    vec![
        // Calls.
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/calls/{}", o.call_id),
            body: none,
            status: 404,
            code: "call_not_found",
        },
        ForeignRequest {
            method: "POST",
            path: |_| "/api/v1/calls".to_owned(),
            body: |o| Some(json!({ "tenant": o.tenant, "to": "+919800000009" })),
            status: 404,
            code: "unknown_tenant",
        },
        // Recordings.
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/calls/{}/recording", o.call_id),
            body: none,
            status: 404,
            code: "recording_not_found",
        },
        // Tenants (operator only: a tenant key finds no such endpoint).
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/tenants/{}", o.tenant),
            body: none,
            status: 404,
            code: "not_found",
        },
        ForeignRequest {
            method: "PATCH",
            path: |o| format!("/api/v1/tenants/{}", o.tenant),
            body: |_| Some(json!({ "status": "suspended", "name": "Taken over" })),
            status: 404,
            code: "not_found",
        },
        ForeignRequest {
            method: "DELETE",
            path: |o| format!("/api/v1/tenants/{}", o.tenant),
            body: none,
            status: 404,
            code: "not_found",
        },
        // Trunks (operator only, like tenants).
        ForeignRequest {
            method: "PUT",
            path: |_| "/api/v1/trunks/local".to_owned(),
            body: |_| Some(json!({ "name": "Open", "allowed_cidrs": ["0.0.0.0/0"] })),
            status: 404,
            code: "not_found",
        },
        ForeignRequest {
            method: "DELETE",
            path: |_| "/api/v1/trunks/local".to_owned(),
            body: none,
            status: 404,
            code: "not_found",
        },
        // Keys.
        ForeignRequest {
            method: "POST",
            path: |_| "/api/v1/keys".to_owned(),
            body: |o| Some(json!({ "name": "backdoor", "tenant": o.tenant })),
            status: 404,
            code: "unknown_tenant",
        },
        ForeignRequest {
            method: "DELETE",
            path: |o| format!("/api/v1/keys/{}", o.spare_key_id),
            body: none,
            status: 404,
            code: "key_not_found",
        },
        // Numbers.
        ForeignRequest {
            method: "POST",
            path: |_| "/api/v1/numbers".to_owned(),
            body: |o| Some(json!({ "number": o.number })),
            status: 409,
            code: "number_unavailable",
        },
        ForeignRequest {
            method: "POST",
            path: |_| "/api/v1/numbers".to_owned(),
            body: |o| Some(json!({ "number": "+918000000077", "tenant": o.tenant })),
            status: 404,
            code: "unknown_tenant",
        },
        ForeignRequest {
            method: "DELETE",
            path: |o| format!("/api/v1/numbers/{}", o.number.replace('+', "%2B")),
            body: none,
            status: 404,
            code: "number_not_found",
        },
        // Plugins.
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/plugins/{}", o.plugin_id),
            body: none,
            status: 404,
            code: "plugin_not_found",
        },
        ForeignRequest {
            method: "POST",
            path: |o| format!("/api/v1/plugins/{}/activate", o.plugin_id),
            body: none,
            status: 404,
            code: "plugin_not_found",
        },
        ForeignRequest {
            method: "POST",
            path: |o| format!("/api/v1/plugins/rollback?tenant={}", o.tenant),
            body: none,
            status: 404,
            code: "unknown_tenant",
        },
        ForeignRequest {
            method: "POST",
            path: |o| format!("/api/v1/plugins?tenant={}", o.tenant),
            body: none,
            status: 404,
            code: "unknown_tenant",
        },
        // Webhooks.
        ForeignRequest {
            method: "DELETE",
            path: |o| format!("/api/v1/webhooks/{}", o.webhook_id),
            body: none,
            status: 404,
            code: "webhook_not_found",
        },
        ForeignRequest {
            method: "POST",
            path: |_| "/api/v1/webhooks".to_owned(),
            body: |o| Some(json!({ "url": "https://evil.example/hook", "tenant": o.tenant })),
            status: 404,
            code: "unknown_tenant",
        },
        // Assets: by name in the key's own tenant (it has none of that name), and naming the
        // owner.
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/assets/{}", o.asset),
            body: none,
            status: 404,
            code: "asset_not_found",
        },
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/assets/{}?tenant={}", o.asset, o.tenant),
            body: none,
            status: 404,
            code: "asset_not_found",
        },
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/assets/{}/audio?tenant={}", o.asset, o.tenant),
            body: none,
            status: 404,
            code: "asset_not_found",
        },
        ForeignRequest {
            method: "DELETE",
            path: |o| format!("/api/v1/assets/{}?tenant={}", o.asset, o.tenant),
            body: none,
            status: 404,
            code: "asset_not_found",
        },
        // Knowledge.
        ForeignRequest {
            method: "GET",
            path: |o| format!("/api/v1/knowledge/{}", o.knowledge_id),
            body: none,
            status: 404,
            code: "knowledge_not_found",
        },
        ForeignRequest {
            method: "PATCH",
            path: |o| format!("/api/v1/knowledge/{}", o.knowledge_id),
            body: |_| Some(json!({ "content": "taken over" })),
            status: 404,
            code: "knowledge_not_found",
        },
        ForeignRequest {
            method: "DELETE",
            path: |o| format!("/api/v1/knowledge/{}", o.knowledge_id),
            body: none,
            status: 404,
            code: "knowledge_not_found",
        },
        ForeignRequest {
            method: "POST",
            path: |_| "/api/v1/knowledge".to_owned(),
            body: |o| Some(json!({ "title": "x", "content": "y", "tenant": o.tenant })),
            status: 404,
            code: "unknown_tenant",
        },
    ]
}

/// One list endpoint: where its rows are in the answer and which of a tenant's ids must (and
/// of the other's must not) appear.
struct List {
    path: &'static str,
    field: &'static str,
    id_field: &'static str,
    own_id: fn(&Owned) -> String,
}

fn lists() -> Vec<List> {
    vec![
        List {
            path: "/api/v1/calls",
            field: "calls",
            id_field: "id",
            own_id: |o| o.call_id.clone(),
        },
        List {
            path: "/api/v1/recordings",
            field: "recordings",
            id_field: "call_id",
            own_id: |o| o.call_id.clone(),
        },
        List {
            path: "/api/v1/keys",
            field: "keys",
            id_field: "id",
            own_id: |o| o.spare_key_id.clone(),
        },
        List {
            path: "/api/v1/numbers",
            field: "numbers",
            id_field: "number",
            own_id: |o| o.number.clone(),
        },
        List {
            path: "/api/v1/plugins",
            field: "plugins",
            id_field: "id",
            own_id: |o| o.plugin_id.clone(),
        },
        List {
            path: "/api/v1/webhooks",
            field: "webhooks",
            id_field: "id",
            own_id: |o| o.webhook_id.clone(),
        },
        List {
            path: "/api/v1/webhooks/deliveries",
            field: "deliveries",
            id_field: "endpoint_id",
            own_id: |o| o.webhook_id.clone(),
        },
        List {
            path: "/api/v1/assets",
            field: "assets",
            id_field: "id",
            own_id: |o| o.asset.clone(),
        },
        List {
            path: "/api/v1/knowledge",
            field: "items",
            id_field: "id",
            own_id: |o| o.knowledge_id.clone(),
        },
    ]
}

/// Creates tenant `id` over the API with the operator key, a key for it (and a spare one),
/// a number, and a call with a recording in the database.
fn create_tenant_with_resources(
    server: &VaaniServer,
    store: &Store,
    runtime: &tokio::runtime::Runtime,
    id: &str,
    number: &str,
) -> Owned {
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(&json!({ "id": id, "name": format!("Tenant {id}") })),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/keys",
        OPERATOR_KEY,
        Some(&json!({ "name": "main", "tenant": id })),
    );
    assert_eq!(status, 201, "{body}");
    let key = body["key"].as_str().expect("the key").to_owned();
    // The tenant's own key creates the spare key and claims the number.
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/keys",
        &key,
        Some(&json!({ "name": "spare" })),
    );
    assert_eq!(status, 201, "{body}");
    let spare_key_id = body["id"].as_str().expect("key id").to_owned();
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/numbers",
        &key,
        Some(&json!({ "number": number, "trunk": "local" })),
    );
    assert_eq!(status, 201, "{body}");
    // A plugin, uploaded and activated with the tenant's key.
    let (status, plugin) = server.upload_plugin(&key, "echo");
    assert_eq!(status, 201, "{plugin}");
    let plugin_id = plugin["id"].as_str().expect("plugin id").to_owned();
    let (status, body) = server.api_request(
        "POST",
        &format!("/api/v1/plugins/{plugin_id}/activate"),
        &key,
        None,
    );
    assert_eq!(status, 200, "{body}");
    // A webhook endpoint (registered before the call, so the call leaves a delivery in its
    // log; the endpoint cannot be reached from here, so the delivery stays pending).
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/webhooks",
        &key,
        Some(&json!({ "url": format!("https://{id}.invalid/hook"), "events": ["call.started"] })),
    );
    assert_eq!(status, 201, "{body}");
    let webhook_id = body["id"].as_str().expect("webhook id").to_owned();
    // An audio asset and a knowledge item.
    let asset = format!("{id}-greeting");
    let (status, body) = put_wav(server, &key, &asset);
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/knowledge",
        &key,
        Some(&json!({ "title": "Hours", "content": format!("{id} opens at 9") })),
    );
    assert_eq!(status, 201, "{body}");
    let knowledge_id = body["id"].as_str().expect("item id").to_owned();

    let call_id = vaani_store::new_id();
    let wav = server.dir.path().join(format!("{id}.wav"));
    std::fs::write(&wav, format!("recording of {id}")).expect("write the recording");
    runtime.block_on(async {
        store
            .insert_call(&NewCall {
                id: call_id.clone(),
                tenant_id: id.to_owned(),
                external_id: None,
                direction: CallDirection::Inbound,
                caller: "+919800000001".to_owned(),
                dialled: number.to_owned(),
                status: CallStatus::Ringing,
                started_at_ms: vaani_store::now_ms(),
                plugin_name: None,
                plugin_version: None,
            })
            .await
            .expect("insert the call");
        store
            .set_recording(&Recording {
                tenant_id: id.to_owned(),
                call_id: call_id.clone(),
                path: wav.display().to_string(),
                duration_ms: 1_000,
                created_at_ms: vaani_store::now_ms(),
            })
            .await
            .expect("store the recording");
    });
    Owned {
        tenant: id.to_owned(),
        key,
        spare_key_id,
        number: number.to_owned(),
        call_id,
        plugin_id,
        webhook_id,
        asset,
        knowledge_id,
    }
}

/// PUTs a short WAV as asset `name` with `key`.
fn put_wav(server: &VaaniServer, key: &str, name: &str) -> (u16, Value) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = std::io::Cursor::new(Vec::new());
    {
        let mut writer = hound::WavWriter::new(&mut wav, spec).expect("a WAV writer");
        for i in 0..800 {
            writer
                .write_sample(((i % 40) * 400) as i16)
                .expect("a sample");
        }
        writer.finalize().expect("the WAV");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .put(format!("{}/api/v1/assets/{name}", server.http_base()))
        .header("Authorization", format!("Bearer {key}"))
        .header("Content-Type", "audio/wav")
        .send(&wav.into_inner()[..])
        .unwrap_or_else(|e| panic!("PUT asset {name}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `owner`'s resources are all still there and unchanged, seen with its own key.
fn assert_resources_intact(server: &VaaniServer, owner: &Owned) {
    let (status, call) = server.api_request(
        "GET",
        &format!("/api/v1/calls/{}", owner.call_id),
        &owner.key,
        None,
    );
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["tenant_id"], json!(owner.tenant));
    let (status, _) = server.api_request(
        "GET",
        &format!("/api/v1/calls/{}/recording", owner.call_id),
        &owner.key,
        None,
    );
    assert_eq!(status, 200);
    let (_, keys) = server.api_request("GET", "/api/v1/keys", &owner.key, None);
    let spare = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == json!(owner.spare_key_id))
        .expect("the spare key is listed");
    assert_eq!(spare["revoked_at_ms"], Value::Null, "{spare}");
    let (_, numbers) = server.api_request("GET", "/api/v1/numbers", &owner.key, None);
    assert_eq!(
        numbers["numbers"],
        json!([{ "number": owner.number, "tenant_id": owner.tenant, "trunk_id": "local" }])
    );
    let (status, tenant) = server.api_request(
        "GET",
        &format!("/api/v1/tenants/{}", owner.tenant),
        OPERATOR_KEY,
        None,
    );
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["status"], json!("active"));
    assert_eq!(tenant["name"], json!(format!("Tenant {}", owner.tenant)));
    let (status, plugin) = server.api_request(
        "GET",
        &format!("/api/v1/plugins/{}", owner.plugin_id),
        &owner.key,
        None,
    );
    assert_eq!(status, 200, "{plugin}");
    assert_eq!(plugin["active"], json!(true), "still the active version");
    let (_, webhooks) = server.api_request("GET", "/api/v1/webhooks", &owner.key, None);
    assert_eq!(
        listed_ids(&webhooks, "webhooks", "id"),
        std::slice::from_ref(&owner.webhook_id),
        "the webhook is still there, and no other was added"
    );
    let (status, asset) = server.api_request(
        "GET",
        &format!("/api/v1/assets/{}", owner.asset),
        &owner.key,
        None,
    );
    assert_eq!(status, 200, "{asset}");
    assert_eq!(asset["duration_ms"], json!(100));
    let (status, item) = server.api_request(
        "GET",
        &format!("/api/v1/knowledge/{}", owner.knowledge_id),
        &owner.key,
        None,
    );
    assert_eq!(status, 200, "{item}");
    assert_eq!(
        item["content"],
        json!(format!("{} opens at 9", owner.tenant)),
        "unchanged"
    );
}

/// The ids in `answer[field]`, by `id_field`.
fn listed_ids(answer: &Value, field: &str, id_field: &str) -> Vec<String> {
    answer[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} list in {answer}"))
        .iter()
        .map(|row| row[id_field].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn a_tenant_key_never_reaches_another_tenants_resources() {
    // The matrix makes hundreds of requests per key in a few seconds: no per-key rate here
    // (testbench/tests/limits.rs covers it).
    let mut spec = ServerSpec::demo();
    spec.env.push((
        "VAANI_HTTP__REQUESTS_PER_SECOND_PER_KEY".to_owned(),
        "0".to_owned(),
    ));
    let server = VaaniServer::start(&spec);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let store = runtime
        .block_on(Store::connect(&server.database_url()))
        .expect("the server's database");
    let a = create_tenant_with_resources(&server, &store, &runtime, "iso-a", "+918000000011");
    let b = create_tenant_with_resources(&server, &store, &runtime, "iso-b", "+918000000022");

    // Each probe is first checked to reach a real resource: the owner gets no 404 for reads.
    for (owner, stranger) in [(&a, &b), (&b, &a)] {
        for request in foreign_requests() {
            let path = (request.path)(owner);
            let body = (request.body)(owner);
            let (status, answer) =
                server.api_request(request.method, &path, &stranger.key, body.as_ref());
            let what = format!(
                "{} {path} with {}'s key on {}'s resource",
                request.method, stranger.tenant, owner.tenant
            );
            assert_eq!(status, request.status, "{what}: {answer}");
            assert_eq!(
                answer["error"]["code"],
                json!(request.code),
                "{what}: {answer}"
            );
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.contains(&owner.key) && !message.contains(&stranger.key),
                "{what}: {answer}"
            );
        }
    }

    // Lists: own rows present, the other tenant's never, also when asking for them by name.
    for (me, other) in [(&a, &b), (&b, &a)] {
        for list in lists() {
            for path in [
                list.path.to_owned(),
                format!("{}?tenant={}", list.path, other.tenant),
                format!("{}?tenant={}", list.path, me.tenant),
            ] {
                let (status, answer) = server.api_request("GET", &path, &me.key, None);
                assert_eq!(status, 200, "GET {path}: {answer}");
                let ids = listed_ids(&answer, list.field, list.id_field);
                let theirs = (list.own_id)(other);
                assert!(
                    !ids.contains(&theirs),
                    "GET {path} by {}: {ids:?}",
                    me.tenant
                );
                if !path.contains(&format!("tenant={}", other.tenant)) {
                    assert!(
                        ids.contains(&(list.own_id)(me)),
                        "GET {path} by {}: {ids:?}",
                        me.tenant
                    );
                } else {
                    assert!(ids.is_empty(), "GET {path} by {}: {ids:?}", me.tenant);
                }
            }
        }
    }

    // Nothing the strangers tried changed anything.
    assert_resources_intact(&server, &a);
    assert_resources_intact(&server, &b);
    // The operator sees both tenants' rows.
    for list in lists() {
        let (_, answer) = server.api_request("GET", list.path, OPERATOR_KEY, None);
        let ids = listed_ids(&answer, list.field, list.id_field);
        for owner in [&a, &b] {
            assert!(
                ids.contains(&(list.own_id)(owner)),
                "{}: {ids:?}",
                list.path
            );
        }
    }

    // No key ever reaches the log.
    let log = server.log();
    for key in [&a.key, &b.key] {
        assert!(!log.contains(key.as_str()), "a key is in the server log");
        let secret = key.rsplit('_').next().expect("the secret part");
        assert!(!log.contains(secret), "a key's secret is in the server log");
    }
    runtime.block_on(store.close());
}

#[test]
fn a_tenant_key_lives_with_its_tenant() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(&json!({ "id": "short-lived", "name": "Short lived" })),
    );
    assert_eq!(status, 201, "{body}");
    let (_, body) = server.api_request(
        "POST",
        "/api/v1/keys",
        OPERATOR_KEY,
        Some(&json!({ "name": "main", "tenant": "short-lived" })),
    );
    let key = body["key"].as_str().expect("the key").to_owned();
    assert_eq!(
        server.api_request("GET", "/api/v1/calls", &key, None).0,
        200
    );

    // Suspending stops calls, not access to the tenant's data.
    let (status, body) = server.api_request(
        "PATCH",
        "/api/v1/tenants/short-lived",
        OPERATOR_KEY,
        Some(&json!({ "status": "suspended" })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server.api_request("GET", "/api/v1/calls", &key, None).0,
        200
    );

    // The config tenants are in the store, with their config numbers.
    let (_, tenants) = server.api_request("GET", "/api/v1/tenants", OPERATOR_KEY, None);
    let ids = listed_ids(&tenants, "tenants", "id");
    assert_eq!(ids, ["clinic", "echo", "short-lived"]);
    let (_, numbers) = server.api_request("GET", "/api/v1/numbers?tenant=echo", OPERATOR_KEY, None);
    assert_eq!(listed_ids(&numbers, "numbers", "number"), ["+918000000099"]);

    // Deleting the tenant ends its keys.
    let (status, _) =
        server.api_request("DELETE", "/api/v1/tenants/short-lived", OPERATOR_KEY, None);
    assert_eq!(status, 204);
    let (status, body) = server.api_request("GET", "/api/v1/calls", &key, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], json!("unauthorized"));
}
