import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

// The embedded models (repo/models) are served and copied as static files: /demo/dit, /demo/vae.
export default defineConfig({
  base: "./",
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
      },
    },
  },
  // The package's worker imports the wasm-bindgen module: bundle it as an ES module worker.
  worker: { format: "es" },
});
