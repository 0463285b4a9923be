// Dawn (the npm package `webgpu`: Chrome's WebGPU implementation for Node) made visible to the wasm build as a
// browser would show it. wgpu's WebGPU backend (wgpu 30, backend/webgpu.rs `get_browser_gpu_property`) takes the
// global for a Window when `globalThis.Window` is defined, else for a worker when `globalThis.WorkerGlobalScope` is,
// and reads `navigator.gpu` from it; the crate's fetch (weights/url) likewise asks `globalThis instanceof
// WorkerGlobalScope`. Node has neither name (and before Node 21 no `navigator`), so this module gives the global the
// worker's shape the package's own Worker has: a `WorkerGlobalScope` that the global is an instance of, and
// `navigator.gpu`. Node's own fetch, Request, Headers, AbortController and setTimeout serve the rest; there is no
// Cache Storage, so the wasm is asked to load with `cache: "none"`.
import { create, globals } from "webgpu";

/** A one-line hint for when Dawn offers no adapter. */
export const NO_ADAPTER_HINT =
  "Dawn found no WebGPU adapter (on a machine without a GPU, point VK_ICD_FILENAMES at SwiftShader's " +
  "/usr/lib/chromium/vk_swiftshader_icd.json; Mesa 22.3's lavapipe lacks shaderUniform*ArrayDynamicIndexing)";

/**
 * Creates Dawn's GPU (`options`: Dawn's `create` strings, e.g. "backend=vulkan") and installs it as
 * `navigator.gpu` of a worker-shaped global. Returns `{ gpu, adapter }`, adapter being null where Dawn offers none
 * (then nothing is installed).
 */
export async function installDawn(options = []) {
  const gpu = create(options);
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { gpu, adapter: null };
  for (const [name, value] of Object.entries(globals)) {
    if (!(name in globalThis)) globalThis[name] = value;
  }
  if (!("WorkerGlobalScope" in globalThis)) {
    globalThis.WorkerGlobalScope = class WorkerGlobalScope {
      static [Symbol.hasInstance](o) {
        return o === globalThis;
      }
    };
  }
  if (globalThis.navigator === undefined) {
    Object.defineProperty(globalThis, "navigator", { value: {}, configurable: true, writable: true });
  }
  Object.defineProperty(globalThis.navigator, "gpu", { value: gpu, configurable: true });
  return { gpu, adapter };
}

/** What Dawn says of `adapter` (GPUAdapterInfo's fields; its getters are not own properties). */
export function adapterInfo(adapter) {
  const i = adapter.info;
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    subgroup_min_size: i.subgroupMinSize,
    subgroup_max_size: i.subgroupMaxSize,
    features: [...adapter.features].sort(),
  };
}
