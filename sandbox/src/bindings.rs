//! Host-side bindings of the `vaani:agent` world, generated from the SDK's WIT.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "agent",
    imports: { default: trappable },
    exports: { default: async },
});
