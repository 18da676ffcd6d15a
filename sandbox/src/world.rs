//! The world versions this host serves, and the version-independent face of
//! their bindings: detection at load, instantiation, `describe` and `on-event`.

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

use crate::error::LoadError;
use crate::event::Event;
use crate::state::HostState;
use crate::{world_v0_1 as v0_1, world_v0_2 as v0_2, world_v0_3 as v0_3};

/// Package name of the contract; imports and exports are `vaani:agent/<iface>@<version>`.
const PACKAGE_PREFIX: &str = "vaani:agent/";
/// The interface every plugin exports.
const HANDLER: &str = "handler";

/// A served version of the `vaani:agent` world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorldVersion {
    /// `vaani:agent@0.1.0`.
    V0_1,
    /// `vaani:agent@0.2.0`.
    V0_2,
    /// `vaani:agent@0.3.0`.
    V0_3,
}

impl WorldVersion {
    /// Every served version, oldest first.
    pub(crate) const ALL: [WorldVersion; 3] =
        [WorldVersion::V0_1, WorldVersion::V0_2, WorldVersion::V0_3];

    /// The package version string.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WorldVersion::V0_1 => "0.1.0",
            WorldVersion::V0_2 => "0.2.0",
            WorldVersion::V0_3 => "0.3.0",
        }
    }

    fn parse(version: &str) -> Option<WorldVersion> {
        WorldVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == version)
    }
}

/// Adds the imports of every served version to the linker (their names are
/// versioned, so they sit side by side).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_1::Agent::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    v0_2::Agent::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    v0_3::Agent::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    Ok(())
}

/// Splits `vaani:agent/<iface>@<version>` into interface and version.
fn agent_interface(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(PACKAGE_PREFIX)?.split_once('@')
}

/// Works out which world a compiled component targets, from the version of the
/// `vaani:agent/handler` it exports. Every `vaani:agent` interface it imports
/// must have that same version, and so must the version the SDK recorded in the
/// custom section, if there is one.
pub(crate) fn detect(
    engine: &Engine,
    component: &Component,
    recorded: Option<&str>,
) -> Result<WorldVersion, LoadError> {
    let ty = component.component_type();
    let exported: Vec<String> = ty
        .exports(engine)
        .filter_map(|(name, _)| agent_interface(name))
        .filter(|(iface, _)| *iface == HANDLER)
        .map(|(_, version)| version.to_string())
        .collect();
    let version = match exported.as_slice() {
        [] => {
            return Err(LoadError::MissingExport(
                "the component does not export vaani:agent/handler".to_string(),
            ));
        }
        [version] => version.clone(),
        _ => {
            return Err(LoadError::Link(format!(
                "the component exports vaani:agent/handler in several versions ({})",
                exported.join(", ")
            )));
        }
    };
    let world = WorldVersion::parse(&version)
        .ok_or_else(|| LoadError::UnsupportedWorldVersion(version.clone()))?;
    for (name, _) in ty.imports(engine) {
        if let Some((iface, imported)) = agent_interface(name)
            && imported != version
        {
            return Err(LoadError::Link(format!(
                "the component exports vaani:agent {version} but imports {iface} of {imported}"
            )));
        }
    }
    if let Some(recorded) = recorded
        && recorded != version
    {
        return Err(LoadError::Link(format!(
            "the component records world version {recorded} but exports vaani:agent {version}"
        )));
    }
    Ok(world)
}

/// A linked component ready to instantiate, with the bindings of its version.
pub(crate) enum AgentPre {
    V0_1(v0_1::AgentPre<HostState>),
    V0_2(v0_2::AgentPre<HostState>),
    V0_3(v0_3::AgentPre<HostState>),
}

/// An instantiated component with the bindings of its version.
pub(crate) enum Agent {
    V0_1(v0_1::Agent),
    V0_2(v0_2::Agent),
    V0_3(v0_3::Agent),
}

/// An event converted for one world version.
pub(crate) enum WitEvent {
    V0_1(v0_1::vaani::agent::types::Event),
    V0_2(v0_2::vaani::agent::types::Event),
    V0_3(v0_3::vaani::agent::types::Event),
}

/// An error the plugin returned from `on-event` (the same in every version).
pub(crate) enum GuestError {
    InvalidState(String),
    Internal(String),
}

/// One schema as `describe()` returned it, before validation.
pub(crate) struct RawSchema {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) json_schema: String,
}

/// What `describe()` returned, before validation.
pub(crate) struct RawInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) schemas: Vec<RawSchema>,
}

impl AgentPre {
    /// Checks the component's exports against the bindings of `version`.
    pub(crate) fn new(
        version: WorldVersion,
        pre: InstancePre<HostState>,
    ) -> wasmtime::Result<AgentPre> {
        Ok(match version {
            WorldVersion::V0_1 => AgentPre::V0_1(v0_1::AgentPre::new(pre)?),
            WorldVersion::V0_2 => AgentPre::V0_2(v0_2::AgentPre::new(pre)?),
            WorldVersion::V0_3 => AgentPre::V0_3(v0_3::AgentPre::new(pre)?),
        })
    }

    /// Instantiates into `store`.
    pub(crate) async fn instantiate_async(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Agent> {
        Ok(match self {
            AgentPre::V0_1(pre) => Agent::V0_1(pre.instantiate_async(store).await?),
            AgentPre::V0_2(pre) => Agent::V0_2(pre.instantiate_async(store).await?),
            AgentPre::V0_3(pre) => Agent::V0_3(pre.instantiate_async(store).await?),
        })
    }
}

impl Agent {
    /// Converts an event for this instance's world; `None` when the world has no
    /// such event (it is then not delivered).
    pub(crate) fn convert(&self, event: Event) -> Option<WitEvent> {
        match self {
            Agent::V0_1(_) => v0_1::event_to_wit(event).map(WitEvent::V0_1),
            Agent::V0_2(_) => v0_2::event_to_wit(event).map(WitEvent::V0_2),
            Agent::V0_3(_) => Some(WitEvent::V0_3(v0_3::event_to_wit(event))),
        }
    }

    /// Calls `handler.describe`.
    pub(crate) async fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<RawInfo> {
        macro_rules! convert {
            ($info:expr) => {{
                let info = $info;
                RawInfo {
                    name: info.name,
                    version: info.version,
                    schemas: info
                        .schemas
                        .into_iter()
                        .map(|s| RawSchema {
                            id: s.id,
                            description: s.description,
                            json_schema: s.json_schema,
                        })
                        .collect(),
                }
            }};
        }
        Ok(match self {
            Agent::V0_1(agent) => convert!(agent.vaani_agent_handler().call_describe(store).await?),
            Agent::V0_2(agent) => convert!(agent.vaani_agent_handler().call_describe(store).await?),
            Agent::V0_3(agent) => convert!(agent.vaani_agent_handler().call_describe(store).await?),
        })
    }

    /// Calls `handler.on-event` with an event converted by [`convert`](Self::convert).
    pub(crate) async fn on_event(
        &self,
        store: &mut Store<HostState>,
        event: &WitEvent,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        use v0_1::vaani::agent::types::PluginError as E1;
        use v0_2::vaani::agent::types::PluginError as E2;
        use v0_3::vaani::agent::types::PluginError as E3;
        Ok(match (self, event) {
            (Agent::V0_1(agent), WitEvent::V0_1(event)) => agent
                .vaani_agent_handler()
                .call_on_event(store, event)
                .await?
                .map_err(|e| match e {
                    E1::InvalidState(m) => GuestError::InvalidState(m),
                    E1::Internal(m) => GuestError::Internal(m),
                }),
            (Agent::V0_2(agent), WitEvent::V0_2(event)) => agent
                .vaani_agent_handler()
                .call_on_event(store, event)
                .await?
                .map_err(|e| match e {
                    E2::InvalidState(m) => GuestError::InvalidState(m),
                    E2::Internal(m) => GuestError::Internal(m),
                }),
            (Agent::V0_3(agent), WitEvent::V0_3(event)) => agent
                .vaani_agent_handler()
                .call_on_event(store, event)
                .await?
                .map_err(|e| match e {
                    E3::InvalidState(m) => GuestError::InvalidState(m),
                    E3::Internal(m) => GuestError::Internal(m),
                }),
            _ => wasmtime::bail!("event converted for another world version"),
        })
    }
}
