import { defineConfig, type Plugin } from "vite";

/**
 * Writes the service worker (src/sw.ts) as `sw.js` at the root of the site (its scope is the page's folder) with the
 * list of the build's files, which it keeps for visits without a network.
 */
function serviceWorker(): Plugin {
  return {
    name: "dit-wasm-service-worker",
    apply: "build",
    generateBundle(_options, bundle) {
      const sw = bundle["sw.js"];
      if (!sw || sw.type !== "chunk") return;
      const files = Object.keys(bundle).filter((f) => f !== "sw.js" && !f.endsWith(".map"));
      // The placeholder is a string literal (whatever its quotes) holding the JSON of the list.
      sw.code = sw.code.replace(/(["'`])__DIT_APP_FILES__\1/, JSON.stringify(JSON.stringify(files)));
    },
  };
}
import { fileURLToPath } from "node:url";

// The embedded models (repo/models) are served and copied as static files: /demo/dit, /demo/vae.
export default defineConfig({
  base: "./",
  plugins: [serviceWorker()],
  publicDir: fileURLToPath(new URL("../../models", import.meta.url)),
  // The package starts its worker with `new URL("./worker.js", import.meta.url)`: keep it out of pre-bundling.
  optimizeDeps: { exclude: ["dit-wasm"] },
  // dit-wasm is linked from ../lib (file: dependency): let the dev server read it.
  server: { port: Number(process.env.PORT ?? 5173), strictPort: true, fs: { allow: [fileURLToPath(new URL("../..", import.meta.url))] } },
  preview: { port: Number(process.env.PORT ?? 5173), strictPort: true },
  // Two pages: the demo, and the kernel benchmark (bench.html, used by `npm run bench`).
  build: {
    target: "es2022",
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL("index.html", import.meta.url)),
        bench: fileURLToPath(new URL("bench.html", import.meta.url)),
        sw: fileURLToPath(new URL("src/sw.ts", import.meta.url)),
      },
      output: { entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js") },
    },
  },
  // The package's worker imports the wasm-bindgen module: bundle it as an ES module worker.
  worker: { format: "es" },
});
