//! Call routing from the database: builds the [`Registry`]'s [`Snapshot`] from the stored
//! tenants, numbers and plugin versions, at start and again after every API write that
//! changes them.
//!
//! The database is the source of truth. The config file's `[[tenants]]` only seed it
//! (`seed_store` in app.rs); what a tenant runs is then decided here:
//! - **Status:** a `suspended` tenant's numbers stay routed but the tenant is left out of the
//!   snapshot, so admission refuses its calls with `480 Temporarily Unavailable` (as for any
//!   tenant that is not running).
//! - **Settings:** a config tenant's come from its `[[tenants]]` table; a tenant created over
//!   the API has its `settings_json` read by [`TenantConfig::from_settings_json`] (the same
//!   checks, defaults for everything left out).
//! - **Numbers:** the `phone_numbers` rows. A number's calls arrive over the row's trunk, else
//!   the tenant's: a config tenant's `trunk`, else the trunk of the tenant's first number
//!   that has one, else the server's first `[[trunks]]` entry.
//! - **Plugin:** the tenant's active stored version if it has activated one (its stored
//!   artifact when this engine can load it, else compiled again in a `vaani compile-plugin`
//!   child and the new artifact stored); otherwise the config file's `plugin =` path.
//!
//! The config file's plugin is deliberately *not* seeded into the database as version 1: a
//! changed file then applies at the next start as it always did, start-up compiles exactly
//! what it did before (nothing is written), and the plugins API lists only what was uploaded.
//! Once a config tenant activates an uploaded version, that version wins over the file (also
//! across restarts); the file applies again only when no version is active.
//!
//! A rebuild reuses what did not change: a tenant whose settings, numbers, trunk and plugin
//! are the same keeps its `Arc<TenantRuntime>`; a changed tenant keeps its key-value store and
//! those of its loaded plugin, language model and HTTP egress that did not change. Calls in
//! progress keep the runtime they were admitted with. Rebuilds run one at a time.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use vaani_config::{Config, TenantConfig, TenantIdentity};
use vaani_sandbox::{ArtifactManifest, LoadedPlugin, PluginHost, PrecompiledPlugin};
use vaani_store::{
    PluginArtifact, PluginVersion, Scope, Store, StoreError, TenantStatus, TenantWithSettings,
};

use crate::app::TenantRuntime;
use crate::egress::Egress;
use crate::generation::LlmService;
use crate::inbound_auth::DigestGate;
use crate::plugin_compile::PluginCompiler;
use crate::registry::{NumberRoute, Registry, Snapshot};
use crate::routing::TrunkAdmission;
use crate::turns::TurnSettings;

/// Why routing could not be built from the database.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The database could not be read; the previous routing stays.
    #[error("reading tenants, numbers and plugins: {0}")]
    Store(#[from] StoreError),
    /// A config tenant could not be built at start (its plugin file, LLM or egress settings).
    #[error("tenants.{tenant}: {message}")]
    ConfigTenant { tenant: String, message: String },
    /// The rebuild task stopped before it finished.
    #[error("the routing rebuild stopped: {0}")]
    Stopped(String),
}

/// Where a tenant's plugin comes from; equal sources mean the loaded plugin can be kept.
#[derive(Clone, Debug, PartialEq)]
enum PluginSource {
    /// No plugin: calls get the fallback text.
    None,
    /// The config file's `plugin =` path.
    File(PathBuf),
    /// The tenant's active stored version.
    Stored(Box<PluginVersion>),
}

/// A running tenant and what it was built from.
#[derive(Clone)]
struct BuiltTenant {
    tenant: TenantConfig,
    plugin: PluginSource,
    runtime: Arc<TenantRuntime>,
}

/// Builds call routing from the database into a [`Registry`] and rebuilds it on request.
pub struct RegistryLoader {
    config: Config,
    store: Store,
    host: PluginHost,
    /// Compiles stored components again when their artifact does not fit this engine
    /// (`None`: such a version is not loaded).
    compiler: Option<PluginCompiler>,
    registry: Arc<Registry>,
    trunks: Vec<TrunkAdmission>,
    auth_gates: HashMap<String, Arc<DigestGate>>,
    /// The tenants of the current snapshot; the lock also makes rebuilds run one at a time.
    built: tokio::sync::Mutex<HashMap<String, BuiltTenant>>,
}

impl RegistryLoader {
    /// A loader for `config`'s trunks whose registry routes nothing until [`load`] runs.
    ///
    /// [`load`]: Self::load
    pub fn new(
        config: Config,
        store: Store,
        host: PluginHost,
        compiler: Option<PluginCompiler>,
    ) -> Result<Self, String> {
        let auth_gates: HashMap<String, Arc<DigestGate>> = crate::inbound_auth::gates(&config)?
            .into_iter()
            .map(|(trunk, gate)| (trunk, Arc::new(gate)))
            .collect();
        let trunks = crate::registry::trunk_admissions(&config);
        let registry = Arc::new(Registry::new(Snapshot {
            trunks: trunks.clone(),
            auth_gates: auth_gates.clone(),
            ..Snapshot::default()
        }));
        Ok(Self {
            config,
            store,
            host,
            compiler,
            registry,
            trunks,
            auth_gates,
            built: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The registry this loader fills.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Builds the routing from the database and makes it current. At start (`at_start`) a
    /// config tenant that cannot be built from its `[[tenants]]` table (its plugin file, LLM
    /// or egress settings) fails the start, as a broken config file does. Any other tenant
    /// that cannot be built (its stored settings became invalid, its stored plugin does not
    /// load) is logged and keeps its previous runtime, or takes no calls (`480`) when it had
    /// none. A database error leaves the current routing unchanged.
    pub async fn load(&self, at_start: bool) -> Result<(), RoutingError> {
        let mut built = self.built.lock().await;
        let trunks = self.trunk_admissions().await?;
        let tenants = self.store.list_tenants_with_settings().await?;
        let numbers = self
            .store
            .list_phone_numbers(&Scope::Operator, None)
            .await?;
        let mut active: HashMap<String, PluginVersion> = self
            .store
            .active_plugins()
            .await?
            .into_iter()
            .map(|version| (version.tenant_id.clone(), version))
            .collect();
        let mut owned: HashMap<&str, Vec<&vaani_store::PhoneNumber>> = HashMap::new();
        for number in &numbers {
            owned.entry(&number.tenant_id).or_default().push(number);
        }

        let mut next: HashMap<String, BuiltTenant> = HashMap::new();
        let mut routes = HashMap::new();
        for row in &tenants {
            let id = row.tenant.id.as_str();
            let config_tenant = self.config.tenant(id);
            let numbers = owned.remove(id).unwrap_or_default();
            let trunk = self.tenant_trunk(config_tenant, &numbers);
            for number in &numbers {
                routes.insert(
                    number.number.clone(),
                    NumberRoute {
                        tenant_id: id.to_owned(),
                        trunk_id: number.trunk_id.clone().unwrap_or_else(|| trunk.clone()),
                    },
                );
            }
            if row.tenant.status == TenantStatus::Suspended {
                continue;
            }
            let numbers = ordered_numbers(config_tenant, &numbers);
            let plugin_from_db = active.remove(id);
            // A config tenant that cannot be built fails the start, as a broken config file
            // does, unless what failed came from the database (its uploaded plugin).
            let fatal = at_start && config_tenant.is_some() && plugin_from_db.is_none();
            let previous = built.get(id);
            let result = match self.tenant_config(row, config_tenant, trunk, numbers) {
                Ok(tenant) => {
                    let plugin = match plugin_from_db {
                        Some(version) => PluginSource::Stored(Box::new(version)),
                        None => tenant
                            .plugin
                            .clone()
                            .map_or(PluginSource::None, PluginSource::File),
                    };
                    match previous {
                        Some(previous)
                            if previous.tenant == tenant && previous.plugin == plugin =>
                        {
                            Ok(previous.clone())
                        }
                        _ => self.build(tenant, plugin, previous).await,
                    }
                }
                Err(message) => Err(message),
            };
            match result {
                Ok(tenant) => {
                    next.insert(id.to_owned(), tenant);
                }
                Err(message) if fatal => {
                    return Err(RoutingError::ConfigTenant {
                        tenant: id.to_owned(),
                        message,
                    });
                }
                Err(message) => {
                    tracing::error!(
                        tenant_id = %id,
                        kept_previous = previous.is_some(),
                        "tenant not rebuilt: {message}"
                    );
                    if let Some(previous) = previous {
                        next.insert(id.to_owned(), previous.clone());
                    }
                }
            }
        }

        let snapshot = Snapshot {
            tenants: next
                .iter()
                .map(|(id, tenant)| (id.clone(), tenant.runtime.clone()))
                .collect(),
            trunks,
            numbers: routes,
            auth_gates: self.auth_gates.clone(),
        };
        tracing::info!(
            tenants = tenants.len(),
            running = snapshot.tenants.len(),
            numbers = snapshot.numbers.len(),
            "call routing loaded from the database"
        );
        self.registry.replace(snapshot);
        *built = next;
        Ok(())
    }

    /// Who may send calls: the config file's trunks, then the operator's API trunks (plain
    /// trunks admitting their source networks). An API trunk whose stored networks do not
    /// parse admits nothing (and says so in the log).
    async fn trunk_admissions(&self) -> Result<Vec<TrunkAdmission>, RoutingError> {
        let mut admissions = self.trunks.clone();
        for listed in self.store.list_trunks().await? {
            if listed.source != vaani_store::TrunkSource::Api
                || admissions.iter().any(|t| t.id == listed.trunk.id)
            {
                continue;
            }
            let mut allowed = Vec::new();
            for cidr in &listed.trunk.allowed_cidrs {
                match cidr.parse::<ipnet::IpNet>() {
                    Ok(net) => allowed.push(net),
                    Err(error) => tracing::warn!(
                        trunk = %listed.trunk.id,
                        "stored network {cidr:?} does not parse ({error}); ignored"
                    ),
                }
            }
            admissions.push(TrunkAdmission {
                id: listed.trunk.id,
                allowed,
                any_source: false,
            });
        }
        Ok(admissions)
    }

    /// The trunk of a tenant's numbers that have none of their own (see the module doc).
    fn tenant_trunk(
        &self,
        config_tenant: Option<&TenantConfig>,
        numbers: &[&vaani_store::PhoneNumber],
    ) -> String {
        config_tenant
            .map(|tenant| tenant.trunk.clone())
            .or_else(|| numbers.iter().find_map(|n| n.trunk_id.clone()))
            .or_else(|| self.config.trunks.first().map(|trunk| trunk.id.clone()))
            .unwrap_or_default()
    }

    /// A tenant's settings: its `[[tenants]]` table, or its stored settings checked.
    fn tenant_config(
        &self,
        row: &TenantWithSettings,
        config_tenant: Option<&TenantConfig>,
        trunk: String,
        numbers: Vec<String>,
    ) -> Result<TenantConfig, String> {
        if let Some(tenant) = config_tenant {
            return Ok(TenantConfig {
                numbers,
                ..tenant.clone()
            });
        }
        let identity = TenantIdentity {
            id: row.tenant.id.clone(),
            name: row.tenant.name.clone(),
            trunk,
            numbers,
        };
        let empty = serde_json::Value::Object(Default::default());
        TenantConfig::from_settings_json(
            identity,
            row.settings.as_ref().unwrap_or(&empty),
            &self.config.sandbox.limits(),
        )
        .map_err(|errors| format!("invalid settings: {}", errors.join("; ")))
    }

    /// A tenant's runtime, keeping what `previous` has that did not change.
    async fn build(
        &self,
        tenant: TenantConfig,
        plugin: PluginSource,
        previous: Option<&BuiltTenant>,
    ) -> Result<BuiltTenant, String> {
        let kept = previous.map(|previous| &previous.runtime);
        let loaded = match previous {
            Some(previous) if previous.plugin == plugin => previous.runtime.plugin.clone(),
            _ => self.load_plugin(&tenant.id, &plugin).await?,
        };
        let kv: Arc<dyn vaani_sandbox::KvStore> = match kept {
            Some(runtime) => runtime.kv.clone(),
            None => crate::tenant_kv::TenantKv::load(self.store.clone(), tenant.id.clone())
                .await
                .map_err(|e| format!("loading plugin key-value data: {e}"))?,
        };
        let llm = match (&tenant.llm, previous) {
            (None, _) => None,
            (Some(_), Some(previous)) if previous.tenant.llm == tenant.llm => {
                previous.runtime.llm.clone()
            }
            (Some(settings), _) => Some(Arc::new(
                LlmService::from_settings(settings).map_err(|e| format!("llm: {e}"))?,
            )),
        };
        let egress = match (&tenant.http, previous) {
            (None, _) => None,
            (Some(_), Some(previous)) if previous.tenant.http == tenant.http => {
                previous.runtime.egress.clone()
            }
            (Some(settings), _) => Some(Arc::new(
                Egress::new(settings).map_err(|e| format!("http: {e}"))?,
            )),
        };
        let runtime = tenant_runtime(
            &tenant,
            &self.config,
            TenantParts {
                plugin: loaded,
                kv,
                llm,
                egress,
            },
        );
        Ok(BuiltTenant {
            tenant,
            plugin,
            runtime: Arc::new(runtime),
        })
    }

    /// Loads a tenant's plugin from where it comes from.
    async fn load_plugin(
        &self,
        tenant_id: &str,
        source: &PluginSource,
    ) -> Result<Option<Arc<LoadedPlugin>>, String> {
        let plugin = match source {
            PluginSource::None => {
                tracing::warn!(%tenant_id, "no plugin: calls get the fallback");
                return Ok(None);
            }
            PluginSource::File(path) => {
                let wasm = std::fs::read(path)
                    .map_err(|e| format!("reading plugin {}: {e}", path.display()))?;
                let host = self.host.clone();
                tokio::task::spawn_blocking(move || host.load(&wasm))
                    .await
                    .map_err(|e| format!("loading plugin {}: {e}", path.display()))?
                    .map_err(|e| format!("loading plugin {}: {e}", path.display()))?
            }
            PluginSource::Stored(version) => self.load_stored(version).await?,
        };
        tracing::info!(
            %tenant_id,
            plugin = %plugin.info.name,
            version = %plugin.info.version,
            hash = %plugin.content_hash,
            "plugin loaded"
        );
        Ok(Some(plugin))
    }

    /// Loads a stored plugin version: its artifact when this engine can run it, else the
    /// component compiled again in a child (and that artifact stored for next time).
    async fn load_stored(&self, version: &PluginVersion) -> Result<Arc<LoadedPlugin>, String> {
        let what = format!("plugin version {}", version.version_number);
        let bytes = self
            .store
            .plugin_bytes(&version.tenant_id, &version.id)
            .await
            .map_err(|e| format!("reading {what}: {e}"))?
            .ok_or_else(|| format!("{what} is not stored any more"))?;
        if let Some(artifact) = bytes
            .artifact
            .filter(|a| a.compatibility_hash == self.host.compatibility_hash())
        {
            let info = serde_json::from_value(version.info.clone())
                .map_err(|e| format!("{what}: stored info: {e}"))?;
            let precompiled = PrecompiledPlugin {
                manifest: ArtifactManifest {
                    info,
                    content_hash: version.content_hash.clone(),
                    world_version: version.world_version.clone(),
                    compatibility_hash: artifact.compatibility_hash,
                    artifact_hash: artifact.artifact_hash,
                },
                artifact: artifact.bytes,
            };
            match self.load_precompiled(precompiled).await {
                Ok(plugin) => return Ok(plugin),
                Err(error) => tracing::warn!(
                    tenant_id = %version.tenant_id,
                    version_number = version.version_number,
                    "stored artifact not loaded, compiling the component again: {error}"
                ),
            }
        }
        let compiler = self
            .compiler
            .as_ref()
            .ok_or_else(|| format!("{what} must be compiled again and no compiler is set"))?;
        let compiled = compiler
            .compile(&bytes.wasm)
            .await
            .map_err(|e| format!("compiling {what} again: {e}"))?;
        let precompiled = compiled.precompiled;
        let plugin = self.load_precompiled(precompiled.clone()).await?;
        let manifest = precompiled.manifest;
        let artifact = PluginArtifact {
            bytes: precompiled.artifact,
            artifact_hash: manifest.artifact_hash,
            compatibility_hash: manifest.compatibility_hash,
        };
        if let Err(error) = self
            .store
            .set_plugin_artifact(&version.tenant_id, &version.id, &artifact)
            .await
        {
            tracing::warn!(
                tenant_id = %version.tenant_id,
                "the new artifact was not stored (compiled again next time): {error}"
            );
        }
        Ok(plugin)
    }

    /// Loads an artifact on the plugin host, off the async threads.
    async fn load_precompiled(
        &self,
        precompiled: PrecompiledPlugin,
    ) -> Result<Arc<LoadedPlugin>, String> {
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || {
            // SAFETY: every stored artifact was made by `precompile` of this program: by the
            // `vaani compile-plugin` child of an upload (http/plugins.rs) or of `load_stored`
            // above. The API takes only component bytes from tenants, never artifacts, so no
            // tenant can write the bytes loaded here.
            unsafe { host.load_precompiled(&precompiled) }
        })
        .await
        .map_err(|e| format!("loading the artifact: {e}"))?
        .map_err(|e| format!("loading the artifact: {e}"))
    }
}

impl crate::http::RoutingReload for RegistryLoader {
    fn check_settings(&self, settings: &serde_json::Value) -> Result<(), Vec<String>> {
        vaani_config::check_tenant_settings(settings, &self.config.sandbox.limits())
    }

    fn reload(self: Arc<Self>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        Box::pin(async move {
            // On a task of its own: a client that hangs up must not stop a rebuild half-way.
            tokio::spawn(async move { self.load(false).await })
                .await
                .map_err(|e| RoutingError::Stopped(e.to_string()))
                .and_then(|result| result)
                .map_err(|e| e.to_string())
        })
    }
}

/// What a tenant's runtime shares with the previous one, or was loaded for it.
struct TenantParts {
    plugin: Option<Arc<LoadedPlugin>>,
    kv: Arc<dyn vaani_sandbox::KvStore>,
    llm: Option<Arc<LlmService>>,
    egress: Option<Arc<Egress>>,
}

/// A tenant's runtime from its settings and loaded parts.
fn tenant_runtime(tenant: &TenantConfig, config: &Config, parts: TenantParts) -> TenantRuntime {
    TenantRuntime {
        id: tenant.id.clone(),
        trunk: tenant.trunk.clone(),
        numbers: tenant.numbers.clone(),
        plugin: parts.plugin,
        limits: crate::call_media::plugin_limits(tenant),
        kv: parts.kv,
        fallback_text: tenant.fallback_text.clone(),
        plugin_config_json: serde_json::Value::Object(tenant.plugin_config.clone()).to_string(),
        ring_ms: tenant.ring_ms,
        silence_timeout: tenant.silence_timeout_ms.map(Duration::from_millis),
        max_call_duration: tenant
            .max_call_duration_secs
            .map(|secs| Duration::from_secs(u64::from(secs))),
        duration_warning: Duration::from_secs(u64::from(tenant.duration_warning_secs)),
        duration_warning_text: tenant.duration_warning_text.clone(),
        turns: TurnSettings {
            end_of_turn: Duration::from_millis(u64::from(tenant.turns.end_of_turn_ms)),
            after_sentence: Duration::from_millis(u64::from(tenant.turns.after_sentence_ms)),
            expecting_number: Duration::from_millis(u64::from(tenant.turns.expecting_number_ms)),
            vad_hangover: Duration::from_millis(u64::from(config.vad.hangover_ms)),
        },
        llm: parts.llm,
        egress: parts.egress,
        transfer_targets: tenant.transfer_targets.clone(),
        recording: tenant.recording.clone(),
        call_limits: crate::limits::TenantCallLimits::from_config(tenant),
    }
}

/// A tenant's numbers, the config file's order first (its first number is the default caller
/// id), then the ones claimed over the API by number.
fn ordered_numbers(
    config_tenant: Option<&TenantConfig>,
    owned: &[&vaani_store::PhoneNumber],
) -> Vec<String> {
    let owns = |number: &str| owned.iter().any(|n| n.number == number);
    let mut numbers: Vec<String> = config_tenant
        .map(|tenant| tenant.numbers.iter().filter(|n| owns(n)).cloned().collect())
        .unwrap_or_default();
    for number in owned {
        if !numbers.contains(&number.number) {
            numbers.push(number.number.clone());
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vaani_sandbox::HostConfig;
    use vaani_store::{NewPlugin, NewTenant, Tenant, TenantUpdate, Trunk};

    const CONFIG: &str = r#"
[http]
operator_key = "k"

[[trunks]]
id = "local"
allowed_cidrs = ["127.0.0.1/32"]

[[tenants]]
id = "clinic"
numbers = ["+918000000001"]
trunk = "local"
ring_ms = 100
"#;

    /// A store seeded like app.rs does with [`CONFIG`], and a loader without a compiler.
    async fn loader() -> (RegistryLoader, Store) {
        let config = Config::from_toml_str(
            CONFIG,
            "test.toml",
            std::path::Path::new("/"),
            &vaani_config::LoadOptions::without_env(),
        )
        .unwrap();
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store
            .upsert_trunk(&Trunk {
                id: "local".to_owned(),
                name: "local".to_owned(),
                allowed_cidrs: vec!["127.0.0.1/32".to_owned()],
            })
            .await
            .unwrap();
        store
            .upsert_tenant(&Tenant {
                id: "clinic".to_owned(),
                name: "Clinic".to_owned(),
                status: TenantStatus::Active,
                created_at_ms: 1,
            })
            .await
            .unwrap();
        store
            .assign_phone_number("clinic", "+918000000001", Some("local"))
            .await
            .unwrap();
        let host = PluginHost::new(HostConfig::compile_only()).unwrap();
        let loader = RegistryLoader::new(config, store.clone(), host, None).unwrap();
        (loader, store)
    }

    async fn api_tenant(store: &Store, id: &str, settings: serde_json::Value, number: &str) {
        store
            .create_tenant(&NewTenant {
                id: id.to_owned(),
                name: id.to_owned(),
                settings: Some(settings),
            })
            .await
            .unwrap();
        store.assign_phone_number(id, number, None).await.unwrap();
    }

    fn route(snapshot: &Snapshot, number: &str) -> Option<(String, String)> {
        snapshot
            .numbers
            .get(number)
            .map(|r| (r.tenant_id.clone(), r.trunk_id.clone()))
    }

    #[tokio::test]
    async fn routing_comes_from_the_stored_tenants_numbers_and_settings() {
        let (loader, store) = loader().await;
        api_tenant(
            &store,
            "acme",
            json!({ "ring_ms": 300, "fallback_text": "Acme is busy." }),
            "+918000000500",
        )
        .await;
        api_tenant(&store, "idle", json!({}), "+918000000600").await;
        store
            .update_tenant(
                "idle",
                &TenantUpdate {
                    status: Some(TenantStatus::Suspended),
                    ..TenantUpdate::default()
                },
            )
            .await
            .unwrap();
        // Stored before settings were checked: the tenant cannot run.
        api_tenant(&store, "broken", json!({ "ring_ms": -5 }), "+918000000700").await;

        loader.load(true).await.unwrap();
        let snapshot = loader.registry().snapshot();
        let mut running: Vec<&String> = snapshot.tenants.keys().collect();
        running.sort();
        assert_eq!(running, ["acme", "clinic"]);
        let local = |tenant: &str| Some((tenant.to_owned(), "local".to_owned()));
        assert_eq!(route(&snapshot, "+918000000001"), local("clinic"));
        // A number without a trunk takes the server's trunk.
        assert_eq!(route(&snapshot, "+918000000500"), local("acme"));
        // Numbers of tenants that do not run stay routed, so that calls get 480, not 404.
        assert_eq!(route(&snapshot, "+918000000600"), local("idle"));
        assert_eq!(route(&snapshot, "+918000000700"), local("broken"));

        let acme = snapshot.tenant("acme").unwrap();
        assert_eq!(acme.ring_ms, 300);
        assert_eq!(acme.fallback_text, "Acme is busy.");
        assert_eq!(acme.trunk, "local");
        assert_eq!(acme.numbers, ["+918000000500"]);
        assert!(acme.plugin.is_none());
        let clinic = snapshot.tenant("clinic").unwrap();
        assert_eq!(clinic.ring_ms, 100, "a config tenant runs with its table");
        assert_eq!(snapshot.trunks.len(), 1);
    }

    #[tokio::test]
    async fn a_rebuild_keeps_what_did_not_change() {
        let (loader, store) = loader().await;
        api_tenant(&store, "acme", json!({ "ring_ms": 300 }), "+918000000500").await;
        loader.load(true).await.unwrap();
        let before = loader.registry().snapshot();
        let clinic = before.tenant("clinic").unwrap();
        let acme = before.tenant("acme").unwrap();

        store
            .update_tenant(
                "acme",
                &TenantUpdate {
                    settings: Some(Some(json!({ "ring_ms": 400 }))),
                    ..TenantUpdate::default()
                },
            )
            .await
            .unwrap();
        loader.load(false).await.unwrap();
        let after = loader.registry().snapshot();
        assert!(Arc::ptr_eq(&clinic, &after.tenant("clinic").unwrap()));
        let changed = after.tenant("acme").unwrap();
        assert!(!Arc::ptr_eq(&acme, &changed));
        assert_eq!(changed.ring_ms, 400);
        assert!(
            Arc::ptr_eq(&acme.kv, &changed.kv),
            "the key-value store is kept"
        );
        // What a call took before is unchanged.
        assert_eq!(acme.ring_ms, 300);

        // A rebuild with nothing changed keeps every runtime.
        loader.load(false).await.unwrap();
        let again = loader.registry().snapshot();
        assert!(Arc::ptr_eq(&changed, &again.tenant("acme").unwrap()));

        // Suspended: out of the running tenants, its number still routed.
        store
            .update_tenant(
                "acme",
                &TenantUpdate {
                    status: Some(TenantStatus::Suspended),
                    ..TenantUpdate::default()
                },
            )
            .await
            .unwrap();
        loader.load(false).await.unwrap();
        let suspended = loader.registry().snapshot();
        assert!(suspended.tenant("acme").is_none());
        assert!(suspended.numbers.contains_key("+918000000500"));

        // Released and deleted: gone.
        store
            .release_phone_number(&Scope::Operator, "+918000000500")
            .await
            .unwrap();
        loader.load(false).await.unwrap();
        assert!(
            !loader
                .registry()
                .snapshot()
                .numbers
                .contains_key("+918000000500")
        );
        store.delete_tenant("acme").await.unwrap();
        loader.load(false).await.unwrap();
        let last = loader.registry().snapshot();
        assert!(last.tenant("acme").is_none());
        assert!(Arc::ptr_eq(&clinic, &last.tenant("clinic").unwrap()));
    }

    #[tokio::test]
    async fn the_active_stored_version_is_loaded_from_its_artifact() {
        let (loader, store) = loader().await;
        api_tenant(&store, "acme", json!({}), "+918000000500").await;
        let wasm = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/echo.wasm"),
        )
        .expect("plugins/dist/echo.wasm (build the plugins)");
        let precompiled = loader.host.precompile(&wasm).unwrap();
        let manifest = precompiled.manifest.clone();
        let add = |artifact: Vec<u8>, compatibility_hash: String| NewPlugin {
            tenant_id: "acme".to_owned(),
            name: manifest.info.name.clone(),
            plugin_version: manifest.info.version.clone(),
            world_version: manifest.world_version.clone(),
            content_hash: manifest.content_hash.clone(),
            info: serde_json::to_value(&manifest.info).unwrap(),
            wasm: wasm.clone(),
            artifact: Some(PluginArtifact {
                artifact_hash: manifest.artifact_hash.clone(),
                bytes: artifact,
                compatibility_hash,
            }),
        };
        let version = store
            .add_plugin(
                &add(
                    precompiled.artifact.clone(),
                    manifest.compatibility_hash.clone(),
                ),
                1,
            )
            .await
            .unwrap()
            .version;
        store.activate_plugin("acme", &version.id, 2).await.unwrap();
        loader.load(false).await.unwrap();
        let acme = loader.registry().snapshot().tenant("acme").unwrap();
        let plugin = acme.plugin.as_ref().expect("the stored version runs");
        assert_eq!(plugin.info.name, "echo");
        assert_eq!(plugin.content_hash, manifest.content_hash);

        // An artifact this engine cannot load, and no compiler to make another: the tenant
        // keeps what it ran.
        store
            .set_plugin_artifact(
                "acme",
                &version.id,
                &PluginArtifact {
                    bytes: vec![0; 8],
                    artifact_hash: "0".repeat(64),
                    compatibility_hash: "f".repeat(64),
                },
            )
            .await
            .unwrap();
        // Same version, so nothing is reloaded …
        loader.load(false).await.unwrap();
        assert!(Arc::ptr_eq(
            &acme,
            &loader.registry().snapshot().tenant("acme").unwrap()
        ));
        // … and a change of settings or numbers keeps the loaded plugin.
        store
            .update_tenant(
                "acme",
                &TenantUpdate {
                    settings: Some(Some(json!({ "ring_ms": 10 }))),
                    ..TenantUpdate::default()
                },
            )
            .await
            .unwrap();
        store
            .release_phone_number(&Scope::Operator, "+918000000500")
            .await
            .unwrap();
        store
            .assign_phone_number("acme", "+918000000501", None)
            .await
            .unwrap();
        loader.load(false).await.unwrap();
        let changed = loader.registry().snapshot().tenant("acme").unwrap();
        assert_eq!(changed.ring_ms, 10);
        assert_eq!(changed.numbers, ["+918000000501"]);
        assert!(Arc::ptr_eq(
            acme.plugin.as_ref().unwrap(),
            changed.plugin.as_ref().unwrap()
        ));
        let fresh = RegistryLoader::new(
            loader.config.clone(),
            store.clone(),
            loader.host.clone(),
            None,
        )
        .unwrap();
        // A fresh loader (a restart) must load the broken artifact and cannot compile the
        // component again: the tenant does not run (its calls get 480).
        fresh.load(true).await.unwrap();
        let restarted = fresh.registry().snapshot();
        assert!(restarted.tenant("acme").is_none());
        assert!(restarted.numbers.contains_key("+918000000501"));
    }
}
