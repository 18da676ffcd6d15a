(component
  (core module $m
    (func (export "describe") (result i32) unreachable))
  (core instance $i (instantiate $m))
  (func $describe (result u32) (canon lift (core func $i "describe")))
  (instance $h (export "describe" (func $describe)))
  (export "vaani:agent/handler@0.9.0" (instance $h)))
